using System.CommandLine;
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
    public static Command Create()
    {
        var defaults = new LocaliserSettings();
        var config = CliOptions.Text("--config", "The training config whose images to mask.", required: true, helpName: "FILE");
        var output = CliOptions.Text("--out", "The mask folder to write (must not hold one already: a run pins the masks it trained with).", required: true, helpName: "DIR");
        var detectorFile = CliOptions.Text("--detector", "The concept detector to use (not with --cache/--quick).", helpName: "DETECTOR.safetensors");
        var cache = CliOptions.Text("--cache", "Load or train the defender's detector for the config's stamping here (default: runs/judges).", helpName: "DIR");
        var quick = CliOptions.Flag("--quick", "A smoke-test detector trained in seconds.");
        var patch = CliOptions.Int("--patch", "The occluding square's side in pixels.", defaults.Patch, min: 1);
        var stride = CliOptions.Int("--stride", "The occluding square's step in pixels.", defaults.Stride, min: 1);
        var threshold = CliOptions.Double("--threshold", "Mask the pixels whose occlusion drop is at least this share of the image's peak.", defaults.Threshold, min: 0, max: 1);
        var threads = CliOptions.Threads();
        var overrides = CliOptions.Repeated("--set", "Override a config field; repeat for more.", helpName: "KEY=VALUE");
        var command = new Command("masks", "Concept masks from a detector alone (it flags the images, occlusion finds where) for the masked loss: selective.mask_folder.")
        {
            config, output, detectorFile, cache, quick, patch, stride, threshold, threads, overrides,
        }.WithExamples(
            "excise masks --config configs/finetune.json --out runs/masks",
            "excise masks --config configs/finetune.json --detector my-detector.safetensors --threshold 0.5 --out runs/masks-0.5");
        command.SetAction(r => Run(r.GetValue(config)!, r.GetValue(output)!, r.GetValue(detectorFile), r.GetValue(cache), r.GetValue(quick),
            new LocaliserSettings(r.GetValue(patch), r.GetValue(stride), r.GetValue(threshold)), r.GetValue(threads), r.GetValue(overrides) ?? []));
        return command;
    }

    static int Run(string configPath, string outDir, string? detectorPath, string? cacheOption, bool quick, LocaliserSettings settings, int threads, IReadOnlyList<string> overrides)
    {
        try { settings.Validate(); }
        catch (ArgumentException e) { throw new UsageException($"{e.Message} (--patch, --stride, --threshold)"); }
        if (detectorPath is not null && (quick || cacheOption is not null))
            throw new UsageException("--detector names the detector to use; --cache and --quick choose a cached one instead. Give one or the other.");
        if (File.Exists(ConceptMaskFolder.IndexPath(outDir)))
            throw new UsageException($"{outDir} already holds a mask folder; choose another --out (a run pins the masks it trained with).");
        var cache = cacheOption ?? ProjectFiles.JudgeCache;

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
