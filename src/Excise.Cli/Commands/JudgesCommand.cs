using System.CommandLine;
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
    public static Command Create()
    {
        var conceptConfig = CliOptions.Text("--concept-config", "The run config whose data.concept stamping the detector learns (default: configs/finetune.json).", helpName: "RUN_CONFIG.json");
        var cache = CliOptions.Text("--cache", "The judges' cache (default: runs/judges).", helpName: "DIR");
        var quick = CliOptions.Flag("--quick", "Smoke-test judges trained in seconds (for trying the command, not for figures).");
        var threads = CliOptions.Threads();
        var train = new Command("train", "Train (or load from the cache) the garment classifier and the concept detector; prints their held-out figures.")
        {
            conceptConfig, cache, quick, threads,
        }.WithExamples("excise judges train", "excise judges train --concept-config my-stripes.json --cache runs/judges");
        train.SetAction(r => Train(r.GetValue(conceptConfig) ?? ProjectFiles.Config("finetune"), r.GetValue(cache) ?? ProjectFiles.JudgeCache,
            r.GetValue(quick), r.GetValue(threads)));
        return new Command("judges", "The judges every run is measured by.") { train };
    }

    static int Train(string conceptConfig, string cache, bool quick, int threads)
    {
        TorchRuntime.ConfigureThreads(threads);
        // Only data.concept is read: finetune.json names no model of its own, only an init run.
        var concept = ConfigLoader.LoadFile<RunConfig>(conceptConfig).DataOrDefault.Concept
            ?? throw new UsageException($"{conceptConfig} has no data.concept section: there is no stamping to train a concept detector for.");
        var injection = ConceptDetector.StampingOf(concept);
        var classifierSettings = quick ? GarmentClassifierSettings.Quick : GarmentClassifierSettings.Default;
        var detectorSettings = ConceptDetectorSettings.For(quick);
        AnsiConsole.MarkupLine($"Stamping from [blue]{Markup.Escape(conceptConfig)}[/]: {Markup.Escape(StampingSignature.Of(injection).ToString())}; cache [blue]{Markup.Escape(Path.GetFullPath(cache))}[/]{(quick ? " [yellow](quick: smoke-test judges)[/]" : "")}");

        using var classifier = WithProgress("garment classifier",
            classifierSettings.Optimization.StepsFor(classifierSettings.TrainLimit ?? FashionMnist.TrainCount),
            progress => GarmentClassifier.LoadOrTrain(cache, classifierSettings, progress));
        using var detector = WithProgress("concept detector",
            detectorSettings.Optimization.StepsFor(detectorSettings.TrainLimit),
            progress => ConceptDetector.LoadOrTrain(cache, injection, detectorSettings, progress));

        Print(classifier, detector);
        return 0;
    }

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
