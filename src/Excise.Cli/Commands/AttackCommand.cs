using Excise.Configuration;
using Excise.Attacks;
using Excise.Diffusion;
using Excise.Training;
using Spectre.Console;

namespace Excise.Cli.Commands;

/// <summary>
/// excise attack --run RUN_DIR --kind prompt|paraphrase|inversion|inversion-control|baseline-rate [--n 8] [--guidance 3] [--steps 50] [--sampler ddim|dpm++2m]
/// [--seed 0] [--batch 32] [--paraphrases FILE] [--inversion-images 16] [--inversion-steps 300] [--inversion-lr 0.005]
/// [--inversion-vectors 1] [--inversion-batch 16] [--inversion-t-low 0] [--inversion-t-high 1] [--placeholder logo|something] [--concept TEXT] [--weights FILE] [--device cpu] --out DIR
/// </summary>
static class AttackCommand
{
    public static int Run(string[] args)
    {
        var cl = new CommandLine(args);
        var run = new RunDirectory(cl.Required("run", "the victim's training run directory"));
        var kind = ParseKind(cl.Required("kind", "prompt, paraphrase, inversion, inversion-control or baseline-rate"));
        var settings = ParseSettings(cl, kind, defaultBatch: 32);
        var concept = cl.Option("concept");
        var weights = cl.Option("weights");
        var device = cl.Option("device");
        var outDir = cl.Required("out", "the directory to write images, grids and attack.json to");
        cl.EnsureAllUsed();
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

    /// <summary>The sampling and attack-budget options shared by <c>attack</c> and <c>eval</c>.</summary>
    public static AttackSettings ParseSettings(CommandLine cl, AttackKind kind, int defaultBatch)
    {
        var defaults = new InversionSettings();
        return new AttackSettings(kind,
            ImagesPerPrompt: cl.Int("n", 8, "count"),
            GuidanceScale: cl.Double("guidance", 3.0, min: 0),
            SamplingSteps: cl.Int("steps", 50),
            Sampler: ParseSampler(cl.Option("sampler") ?? "ddim"),
            Seed: cl.Long("seed", 0),
            BatchSize: cl.Int("batch", defaultBatch),
            Paraphrase: new ParaphraseSettings(cl.Option("paraphrases")),
            Inversion: defaults with
            {
                Images = cl.Int("inversion-images", defaults.Images),
                Steps = cl.Int("inversion-steps", defaults.Steps),
                LearningRate = cl.Double("inversion-lr", defaults.LearningRate),
                Vectors = cl.Int("inversion-vectors", defaults.Vectors),
                BatchSize = cl.Int("inversion-batch", defaults.BatchSize),
                TimestepLow = cl.Double("inversion-t-low", defaults.TimestepLow),
                TimestepHigh = cl.Double("inversion-t-high", defaults.TimestepHigh),
                PlaceholderWord = cl.Option("placeholder") ?? defaults.PlaceholderWord,
            });
    }

    public static SamplerKind ParseSampler(string text)
    {
        try { return EnumNames.Parse<SamplerKind>(text, "sampler"); }
        catch (ArgumentException e) { throw new UsageException("--sampler: " + e.Message); }
    }

    static AttackKind ParseKind(string text)
    {
        try { return EnumNames.Parse<AttackKind>(text, "attack kind"); }
        catch (ArgumentException e) { throw new UsageException(e.Message); }
    }
}
