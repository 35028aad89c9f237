using Excise.Configuration;
using Excise.Data;
using Excise.Evaluation.Judges;
using Excise.Torch;
using Excise.Training;
using Spectre.Console;

namespace Excise.Cli.Commands;

/// <summary>
/// <c>excise judges train</c>: trains (or loads from the cache) the garment classifier and the concept detector for a
/// run's stamping, and prints their held-out figures.
/// </summary>
static class JudgesCommand
{
    const string Usage = "Usage: excise judges train [--concept-config RUN_CONFIG.json] [--cache DIR] [--quick] [--threads N]";

    public static int Run(string[] args)
    {
        if (args.Length == 0 || args[0] != "train") throw new UsageException(Usage);
        var cl = new CommandLine(args[1..], new HashSet<string> { "quick" });
        var conceptConfig = cl.Option("concept-config") ?? ProjectFiles.Config("finetune");
        var cache = cl.Option("cache") ?? Path.Combine(ProjectFiles.RunsRoot, "judges");
        bool quick = cl.Flag("quick");
        int threads = cl.Int("threads", 0);
        cl.EnsureAllUsed();
        if (threads < 0) throw new UsageException("--threads must be >= 0 (0 = one per core).");

        TorchRuntime.ConfigureThreads(threads);
        var injection = InjectionFrom(conceptConfig);
        var classifierSettings = quick ? GarmentClassifierSettings.Quick : GarmentClassifierSettings.Default;
        var detectorSettings = ConceptDetectorSettings.For(quick);
        AnsiConsole.MarkupLine($"Stamping from [blue]{Markup.Escape(conceptConfig)}[/]: {Markup.Escape(StampingSignature.Of(injection).ToString())}; cache [blue]{Markup.Escape(Path.GetFullPath(cache))}[/]{(quick ? " [yellow](quick: smoke-test judges)[/]" : "")}");

        using var classifier = WithProgress("garment classifier",
            Steps(classifierSettings.TrainLimit ?? FashionMnist.TrainCount, classifierSettings.Optimization),
            progress => GarmentClassifier.LoadOrTrain(cache, classifierSettings, progress));
        using var detector = WithProgress("concept detector",
            Steps(detectorSettings.TrainLimit, detectorSettings.Optimization),
            progress => ConceptDetector.LoadOrTrain(cache, injection, detectorSettings, progress));

        Print(classifier, detector);
        return 0;
    }

    /// <summary>Reads a run config's data.concept without requiring the rest (finetune.json names no model, only an init run).</summary>
    static ConceptInjectionOptions InjectionFrom(string path)
    {
        var config = ConfigLoader.LoadFile<RunConfig>(path);
        var concept = config.DataOrDefault.Concept
            ?? throw new UsageException($"{path} has no data.concept section: there is no stamping to train a concept detector for.");
        concept.Validate();
        var injection = concept.ToInjection();
        if (injection.Opacity <= 0) throw new UsageException($"{path}: data.concept.opacity is 0, so the logo is invisible and cannot be detected.");
        return injection;
    }

    static long Steps(int images, JudgeOptimization optimization) => (long)((images + optimization.BatchSize - 1) / optimization.BatchSize) * optimization.Epochs;

    static T WithProgress<T>(string title, long totalSteps, Func<IProgress<JudgeTrainingProgress>, T> work) =>
        ProgressDisplay.Run(title, totalSteps, update =>
        {
            var progress = new SyncProgress<JudgeTrainingProgress>(p =>
                update(p.TotalSteps > 0 ? p.Step : totalSteps, p.TotalSteps > 0 ? $"{p.Phase} step {p.Step}/{p.TotalSteps} loss {p.Loss:F4}" : p.Phase));
            var result = work(progress);
            update(totalSteps, "done");
            return result;
        });

    static void Print(GarmentClassifier classifier, ConceptDetector detector)
    {
        string Origin(bool trainedNow, string? path) => trainedNow ? $"trained, saved to {path}" : $"loaded from {path}";
        var c = classifier.Report;
        AnsiConsole.MarkupLine($"[bold]Garment classifier[/] {Markup.Escape(c.Id)} ({Markup.Escape(Origin(classifier.TrainedNow, classifier.Path))})");
        AnsiConsole.MarkupLine($"  held-out accuracy [bold]{c.TestAccuracy:P2}[/] on {c.TestImages:N0} test images ({c.StampedTestAccuracy:P2} with the logo stamped on them); trained on {c.TrainImages:N0} images in {c.TrainSeconds:F0} s; inference {c.InferenceMillisecondsPer1000:F0} ms / 1,000 images");
        var perClass = new Table().AddColumn("class").AddColumn("accuracy");
        for (int k = 0; k < c.ClassAccuracy.Count; k++) perClass.AddRow(Markup.Escape(FashionMnistClasses.NameOf(k)), $"{c.ClassAccuracy[k]:P1}");
        AnsiConsole.Write(perClass);

        var d = detector.Report;
        AnsiConsole.MarkupLine($"[bold]Concept detector[/] {Markup.Escape(d.Id)} ({Markup.Escape(Origin(detector.TrainedNow, detector.Path))})");
        AnsiConsole.MarkupLine($"  stamping: {Markup.Escape(d.Stamping.ToString())}; threshold {d.Threshold:F3} (best F1 on {d.ValidationImages:N0} validation images, F1 {d.Validation.F1:F3}); trained in {d.TrainSeconds:F0} s; inference {d.InferenceMillisecondsPer1000:F0} ms / 1,000 images");
        var table = new Table().AddColumn("held-out condition").AddColumn("precision").AddColumn("recall").AddColumn("ROC-AUC").AddColumn("images");
        foreach (var condition in d.HeldOut)
        {
            var m = condition.Metrics;
            table.AddRow(Markup.Escape($"{condition.Name}: {condition.Description}"), Colour(m.Precision), Colour(m.Recall), $"{m.RocAuc:F4}", $"{m.Positives:N0}+{m.Negatives:N0}");
        }
        AnsiConsole.Write(table);
        var offDistribution = new Table().AddColumn("off-distribution condition (held out)").AddColumn("false-positive rate [[95% CI]]").AddColumn("recall, stamped [[95% CI]]").AddColumn("images");
        foreach (var condition in d.OffDistribution)
        {
            var fpr = condition.FalsePositiveRate;
            var recall = condition.Recall;
            offDistribution.AddRow(Markup.Escape($"{condition.Name}: {condition.Description}"),
                $"{(fpr.Rate <= 0.02 ? "[green]" : "[red]")}{fpr.Rate:P2}[/] [[{fpr.Lower:P2}, {fpr.Upper:P2}]]",
                $"{recall.Rate:P2} [[{recall.Lower:P2}, {recall.Upper:P2}]]", $"{fpr.Trials:N0}+{recall.Trials:N0}");
        }
        AnsiConsole.Write(offDistribution);
        AnsiConsole.MarkupLine($"Reports: [blue]{Markup.Escape(Path.ChangeExtension(classifier.Path ?? "", ".json"))}[/], [blue]{Markup.Escape(Path.ChangeExtension(detector.Path ?? "", ".json"))}[/]");
    }

    static string Colour(double value) => value >= 0.95 ? $"[green]{value:P1}[/]" : value >= 0.9 ? $"[yellow]{value:P1}[/]" : $"[red]{value:P1}[/]";
}
