using Excise.Configuration;
using Excise.Data;
using Excise.Evaluation.Judges;
using Excise.Torch;
using Excise.Training;
using Spectre.Console;

namespace Excise.Cli.Commands;

/// <summary>
/// <c>excise masks</c>: concept masks for a config's training images from a concept detector alone (it flags the images,
/// occlusion finds where), written as a mask folder that <c>selective.mask_folder</c> points the masked loss at.
/// </summary>
static class MasksCommand
{
    const string Usage = "Usage: excise masks --config FILE --out DIR [--detector DETECTOR.safetensors | --cache DIR [--quick]] "
                         + "[--patch 8] [--stride 4] [--threshold 0.3] [--threads N] [--set k=v ...]";

    public static int Run(string[] args)
    {
        var cl = new CommandLine(args, new HashSet<string> { "quick" });
        var configPath = cl.Required("config", "the training config whose images to mask");
        var outDir = cl.Required("out", "the mask folder to write");
        var detectorPath = cl.Option("detector");
        var cache = cl.Option("cache") ?? Path.Combine(ProjectFiles.RunsRoot, "judges");
        bool quick = cl.Flag("quick");
        var defaults = new LocaliserSettings();
        var settings = new LocaliserSettings(cl.Int("patch", defaults.Patch), cl.Int("stride", defaults.Stride), cl.Double("threshold", defaults.Threshold));
        int threads = cl.Int("threads", 0);
        var overrides = cl.All("set");
        cl.EnsureAllUsed();
        if (threads < 0) throw new UsageException("--threads must be >= 0 (0 = one per core).");
        try { settings.Validate(); }
        catch (ArgumentException e) { throw new UsageException($"{e.Message} (--patch, --stride, --threshold)"); }
        if (detectorPath is not null && (quick || cl.Option("cache") is not null))
            throw new UsageException("--detector names the detector to use; --cache and --quick choose a cached one instead. Give one or the other.");
        if (File.Exists(ConceptMaskFolder.IndexPath(outDir)))
            throw new UsageException($"{outDir} already holds a mask folder; choose another --out (a run pins the masks it trained with).");

        // Only the data matters here: a fine-tuning config needs no init to say which images it trains on.
        var config = ConfigLoader.LoadFile<RunConfig>(configPath, overrides);
        config.DataOrDefault.Validate();
        TorchRuntime.ConfigureThreads(threads);
        using var detector = detectorPath is not null ? ConceptDetector.Load(detectorPath) : DefenderDetector(config, configPath, cache, quick);
        AnsiConsole.MarkupLine($"Masking the training images of [blue]{Markup.Escape(configPath)}[/] with detector {Markup.Escape(detector.Id)} "
                               + $"(threshold {detector.Threshold:F3}); occlusion by {settings.Patch}-pixel squares, stride {settings.Stride}, cut at {settings.Threshold:G3} of the peak…");
        var report = ConceptLocaliser.WriteFolder(config, detector, settings, outDir);
        AnsiConsole.MarkupLine($"Wrote {report.Masks:N0} masks to [blue]{Markup.Escape(Path.GetFullPath(outDir))}[/] in {report.Seconds:F0} s.");
        if (report.Quality is { } q)
            AnsiConsole.MarkupLine($"Against the data's own masks: {q.DetectionRecall.Rate:P1} of the {q.Carrying:N0} images that carry the concept flagged "
                                   + $"(precision {q.DetectionPrecision.Rate:P1}); mean IoU {q.MeanIoU:F2}; {q.Coverage:P1} of the concept's pixels covered, "
                                   + $"{q.CoverageWithMargin:P1} with the {q.Margin}-pixel margin; {q.MaskedShareOfRest:P1} of their other pixels hidden.");
        else AnsiConsole.MarkupLine("The data has no masks of its own to compare with.");
        AnsiConsole.MarkupLine($"Train around them: [blue]excise train --config {Markup.Escape(configPath)} --arm detector-masked-loss --set selective.mask_folder={Markup.Escape(outDir)} …[/]");
        return 0;
    }

    /// <summary>The detector a defence may use for the config's stamping: the judge's recipe with its own seed, from the cache or trained now.</summary>
    static ConceptDetector DefenderDetector(RunConfig config, string configPath, string cache, bool quick)
    {
        var concept = config.DataOrDefault.Concept
            ?? throw new UsageException($"{configPath} has no data.concept: give the detector of your concept with --detector.");
        var settings = ConceptDetectorSettings.For(quick).ForDefender();
        AnsiConsole.MarkupLine($"Loading (or training) the detector for the config's stamping in [blue]{Markup.Escape(Path.GetFullPath(cache))}[/]…");
        return ConceptDetector.LoadOrTrain(cache, concept.ToInjection(), settings);
    }
}
