using System.Diagnostics;
using Excise.Configuration;
using Excise.Imaging;
using Excise.Serialization;
using Excise.Projection;
using Excise.Training;

namespace Excise.Attacks;

/// <summary>Runs one attack against a victim and (optionally) writes its output directory.</summary>
public static class AttackRunner
{
    /// <summary>Opens the run, takes the concept from its data.concept.phrase unless given, attacks, writes <paramref name="outputDirectory"/>.</summary>
    /// <param name="recipe">Attack the run's weights under another data recipe (<see cref="Victim.Open"/>): the never-saw-it floor.</param>
    public static AttackResult Run(RunDirectory run, AttackSettings settings, string? outputDirectory, string? concept = null,
        string? weightsPath = null, string? device = null, IProgress<AttackProgress>? progress = null, CancellationToken cancel = default,
        RunConfig? recipe = null)
    {
        using var victim = Victim.Open(run, weightsPath, device, recipe);
        return Run(victim, concept ?? victim.ConceptPhrase ?? throw new ArgumentException(
            $"{run.ConfigPath} has no data.concept.phrase: name the concept to attack (--concept \"...\")."), settings, outputDirectory, progress, cancel);
    }


    public static AttackResult Run(Victim victim, string concept, AttackSettings settings, string? outputDirectory,
        IProgress<AttackProgress>? progress = null, CancellationToken cancel = default)
    {
        if (string.IsNullOrWhiteSpace(concept)) throw new ArgumentException("The concept phrase must not be empty.");
        settings.Validate();
        if (outputDirectory is not null) AttackOutput.Prepare(outputDirectory);
        var clock = Stopwatch.StartNew();

        string? brand = null;
        InversionReport? inversion = null;
        LearnedToken? token = null;
        IReadOnlyList<AttackPrompt> prompts;
        IReadOnlyList<string> conditioningPrompts;
        PromptConditioner conditioner = AttackImageSampler.EncoderConditioner(victim);
        try
        {
            switch (settings.Kind)
            {
                case AttackKind.Prompt:
                    prompts = AttackPrompts.Direct(concept);
                    conditioningPrompts = prompts.Select(p => p.Text).ToList();
                    break;
                case AttackKind.BaselineRate:
                    prompts = AttackPrompts.Plain();
                    conditioningPrompts = prompts.Select(p => p.Text).ToList();
                    break;
                case AttackKind.Paraphrase:
                    var paraphrase = settings.ParaphraseOrDefault;
                    brand = ConceptParaphrases.BrandOf(concept);
                    var templates = new List<string>();
                    if (paraphrase.IncludeBuiltIn) templates.AddRange(ConceptParaphrases.BuiltInTemplates(concept));
                    if (paraphrase.File is not null) templates.AddRange(ConceptParaphrases.LoadFile(paraphrase.File));
                    prompts = AttackPrompts.Expand(templates.Distinct());
                    conditioningPrompts = prompts.Select(p => p.Text).ToList();
                    break;
                case AttackKind.Inversion or AttackKind.InversionControl:
                    (token, inversion, prompts, conditioningPrompts, conditioner) = PrepareInversion(victim, concept, settings, outputDirectory, progress, cancel);
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(settings), settings.Kind, "Unknown attack kind.");
            }

            var preparation = clock.Elapsed;
            int total = prompts.Count * settings.ImagesPerPrompt;
            progress?.Report(new AttackProgress("sampling", 0, total, $"{prompts.Count} prompts × {settings.ImagesPerPrompt}"));
            var images = AttackImageSampler.Sample(victim, conditioningPrompts, prompts, settings, conditioner,
                (done, all) => progress?.Report(new AttackProgress("sampling", done, all, $"{done}/{all} images")), cancel);
            var timing = new AttackTiming(clock.Elapsed, preparation, clock.Elapsed - preparation, images.Count);
            var result = new AttackResult(settings.Kind, concept, settings, prompts, images, timing, inversion, brand,
                outputDirectory is null ? null : Path.GetFullPath(outputDirectory));
            if (outputDirectory is not null) AttackOutput.Write(outputDirectory, result, Describe(victim));
            return result;
        }
        finally
        {
            token?.Dispose();
        }
    }

    static (LearnedToken, InversionReport, IReadOnlyList<AttackPrompt>, IReadOnlyList<string>, PromptConditioner) PrepareInversion(
        Victim victim, string concept, AttackSettings settings, string? outputDirectory, IProgress<AttackProgress>? progress, CancellationToken cancel)
    {
        var inversionSettings = settings.InversionForKind;
        var config = victim.Config ?? throw new InvalidOperationException(
            "inversion needs the victim's run config (its data recipe decides which images are held out); open the victim from its run directory.");
        var heldOut = HeldOutConcept.Build(config, concept, inversionSettings.Images);
        if (victim.Run is { } run && HeldOutConcept.TrainingIds(run) is { } trained)
            HeldOutConcept.EnsureUnseen(heldOut, trained, run.GroundTruthPath);
        if (outputDirectory is not null)
            PngIO.Save(ImageGrid.Compose(heldOut.Select(e => e.Image).ToList(), Math.Min(8, heldOut.Count), scale: 2),
                Path.Combine(outputDirectory, AttackOutput.HeldOutGridFile));

        var (token, report) = TextualInversion.Learn(victim, heldOut, inversionSettings, settings.Seed,
            (step, steps, loss) => progress?.Report(new AttackProgress("inversion", step, steps, $"step {step}/{steps} loss {loss:F4}")), cancel);
        try
        {
            if (outputDirectory is not null)
                SafetensorsFile.Save(Path.Combine(outputDirectory, AttackOutput.LearnedTokenFile),
                    [new KeyValuePair<string, TorchSharp.torch.Tensor>("vectors", token.Vectors)],
                    new Dictionary<string, string>
                    {
                        ["concept"] = concept,
                        ["settings"] = ConfigLoader.ToJson(inversionSettings),
                        ["seed"] = settings.Seed.ToString(System.Globalization.CultureInfo.InvariantCulture),
                        ["final_loss"] = report.FinalLoss.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
                    });

            var placeholderPrompts = Enumerable.Range(0, Data.FashionMnistClasses.Count)
                .Select(label => (Label: label, Prompt: PlaceholderPrompt.Build(inversionSettings, label, victim.Encoder.Tokenizer, victim.Encoder.MaxLength)))
                .ToList();
            var prompts = placeholderPrompts.Select(p => new AttackPrompt(p.Prompt.Display, p.Label)).ToList();
            var conditioning = placeholderPrompts.Select(p => p.Prompt.Text).ToList();
            var byText = placeholderPrompts.ToDictionary(p => p.Prompt.Text, p => p.Prompt);
            return (token, report, prompts, conditioning, TextualInversion.Conditioner(victim, token, byText));
        }
        catch
        {
            token.Dispose();
            throw;
        }
    }

    static VictimInfo Describe(Victim victim) => new(
        victim.Run?.Root, victim.WeightsPath, victim.Config?.Hash(),
        victim.Config is { } c && !victim.RecipeIsForeign ? c.SelectiveOrDefault.Arm.ToName() : null);
}
