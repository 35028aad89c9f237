using System.CommandLine;
using Excise.Attacks;
using Excise.Configuration;
using Excise.Diffusion;
using Excise.Training;
using Spectre.Console;

namespace Excise.Cli.Commands;

/// <summary>excise attack: one attack on a trained run, its images, grids and attack.json.</summary>
static class AttackCommand
{
    public static Command Create()
    {
        var run = CliOptions.Text("--run", "The victim's training run directory.", required: true, helpName: "RUN_DIR");
        var kind = CliOptions.RequiredChoice<AttackKind>("--kind", "The attack.");
        var settings = new AttackOptions();
        var concept = CliOptions.Text("--concept", "The concept's phrase (default: the run's data.concept.phrase).", helpName: "TEXT");
        var weights = CliOptions.Text("--weights", "Another weights file of the run (default: its model.safetensors).", helpName: "FILE");
        var device = CliOptions.Text("--device", "cpu or cuda (default: the run's config).");
        var output = CliOptions.Text("--out", "The directory to write images, grids and attack.json to.", required: true, helpName: "DIR");
        var command = new Command("attack", "Try to extract the concept from a trained run; writes images, grids and attack.json.")
        {
            run, kind, concept, weights, device, output,
        }.WithExamples(
            "excise attack --run runs/ft --kind prompt --out runs/ft/attack-prompt",
            "excise attack --run runs/ft --kind inversion --inversion-steps 600 --placeholder something --out runs/ft/inversion");
        settings.AddTo(command);
        command.SetAction(r => Run(new RunDirectory(r.GetValue(run)!), settings.Read(r, r.GetValue(kind)), r.GetValue(concept), r.GetValue(weights), r.GetValue(device), r.GetValue(output)!));
        return command;
    }

    static int Run(RunDirectory run, AttackSettings settings, string? concept, string? weights, string? device, string outDir)
    {
        var kind = settings.Kind;
        if (kind != AttackKind.Paraphrase && settings.Paraphrase!.File is not null) throw new UsageException("--paraphrases only applies to --kind paraphrase.");
        try { settings.Validate(); }
        catch (ArgumentException e) { throw new UsageException(e.Message); }

        // Inversion reports its steps first, then sampling its images: each phase fills half the bar.
        double phases = AttackKinds.UsesInversion(kind) ? 2 : 1;
        var result = ProgressDisplay.Run($"attack {kind.ToName()}", phases, update =>
            AttackRunner.Run(run, settings, outDir, concept, weights, device, new SyncProgress<AttackProgress>(p =>
            {
                double offset = p.Phase == "sampling" && AttackKinds.UsesInversion(kind) ? 1 : 0;
                update(offset + (p.Total > 0 ? (double)p.Done / p.Total : 0), $"{p.Phase}: {p.Status}");
            })));

        AnsiConsole.MarkupLine($"[bold]{kind.ToName()}[/] attack on [blue]{Markup.Escape(run.Root)}[/] for \"{Markup.Escape(result.Concept)}\": " +
                               $"{result.Images.Count} images from {result.Prompts.Count} prompts in {result.Timing.Total.TotalSeconds:F1} s " +
                               $"({result.Timing.SecondsPerImage:F3} s/image sampling).");
        if (result.Inversion is { } inversion)
            AnsiConsole.MarkupLine($"Inversion: {inversion.HeldOutIds.Count} held-out images, {inversion.StepLosses.Count} steps in {inversion.LearnTime.TotalSeconds:F1} s " +
                                   $"({inversion.SecondsPerStep:F3} s/step); denoising loss {inversion.InitialLoss:F5} → {inversion.FinalLoss:F5}.");
        AnsiConsole.MarkupLine($"Wrote [blue]{Markup.Escape(Path.GetFullPath(outDir))}[/] ({AttackOutput.ManifestFile}, {AttackOutput.ImagesFolder}/, {AttackOutput.GridsFolder}/, grid.png).");
        return 0;
    }
}

/// <summary>The sampling and attack-budget options shared by <c>attack</c> and <c>eval</c>, with the library's defaults.</summary>
sealed class AttackOptions
{
    static readonly AttackSettings Defaults = new(AttackKind.Prompt);
    static readonly InversionSettings InversionDefaults = new();

    readonly Option<int> count = CliOptions.Int("-n", "Images per attack prompt.", Defaults.ImagesPerPrompt, min: 1, aliases: ["--n", "--count"]);
    readonly Option<double> guidance = CliOptions.Double("--guidance", "Classifier-free guidance scale.", Defaults.GuidanceScale, min: 0);
    readonly Option<int> steps = CliOptions.Int("--steps", "Sampling steps.", Defaults.SamplingSteps, min: 1);
    readonly ChoiceOption<SamplerKind> sampler = CliOptions.Choice("--sampler", "The sampler.", Defaults.Sampler);
    readonly Option<long> seed = CliOptions.Long("--seed", "The noise seed.", Defaults.Seed);
    readonly Option<int> batch = CliOptions.Int("--batch", "Images sampled per model call (memory, not results).", Defaults.BatchSize, min: 1);
    readonly Option<string> paraphrases = CliOptions.Text("--paraphrases", "Paraphrase prompts, one per line (default: the built-in ones); --kind paraphrase only.", helpName: "FILE");
    readonly Option<int> inversionImages = CliOptions.Int("--inversion-images", "Held-out images carrying the concept that the inversion adversary learns from.", InversionDefaults.Images, min: 1);
    readonly Option<int> inversionSteps = CliOptions.Int("--inversion-steps", "The adversary's optimisation steps.", InversionDefaults.Steps, min: 0);
    readonly Option<double> inversionLearningRate = CliOptions.Double("--inversion-lr", "The adversary's learning rate.", InversionDefaults.LearningRate, min: 0);
    readonly Option<int> inversionVectors = CliOptions.Int("--inversion-vectors", "Token vectors the adversary learns.", InversionDefaults.Vectors, min: 1);
    readonly Option<int> inversionBatch = CliOptions.Int("--inversion-batch", "The adversary's batch size.", InversionDefaults.BatchSize, min: 1);
    readonly Option<double> timestepLow = CliOptions.Double("--inversion-t-low", "Lowest share of the schedule the adversary trains on.", InversionDefaults.TimestepLow, min: 0, max: 1);
    readonly Option<double> timestepHigh = CliOptions.Double("--inversion-t-high", "Highest share of the schedule the adversary trains on.", InversionDefaults.TimestepHigh, min: 0, max: 1);
    readonly Option<string> placeholder = CliOptions.Text("--placeholder", "The word the adversary's token starts from ('something' names nothing of the concept).", InversionDefaults.PlaceholderWord, helpName: "WORD");

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { count, guidance, steps, sampler, seed, batch, paraphrases, inversionImages, inversionSteps, inversionLearningRate,
                                              inversionVectors, inversionBatch, timestepLow, timestepHigh, placeholder })
            command.Add(option);
    }

    public AttackSettings Read(ParseResult r, AttackKind kind) => new(kind,
        ImagesPerPrompt: r.GetValue(count),
        GuidanceScale: r.GetValue(guidance),
        SamplingSteps: r.GetValue(steps),
        Sampler: r.GetChoice(sampler),
        Seed: r.GetValue(seed),
        BatchSize: r.GetValue(batch),
        Paraphrase: new ParaphraseSettings(r.GetValue(paraphrases)),
        Inversion: InversionDefaults with
        {
            Images = r.GetValue(inversionImages),
            Steps = r.GetValue(inversionSteps),
            LearningRate = r.GetValue(inversionLearningRate),
            Vectors = r.GetValue(inversionVectors),
            BatchSize = r.GetValue(inversionBatch),
            TimestepLow = r.GetValue(timestepLow),
            TimestepHigh = r.GetValue(timestepHigh),
            PlaceholderWord = r.GetValue(placeholder)!,
        });
}
