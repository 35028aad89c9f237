using System.Globalization;
using Excise.Experiment;

namespace Excise.Reporting;

/// <summary>Sentences the HTML and Markdown reports share, so both say the same thing in the same words.</summary>
internal static class ReportText
{
    public const string Title = "Excise experiment";

    public const string QuickPresetWarning =
        "Quick preset: models too small/short for the quality figures to mean anything. The run checks that the pipeline works end to end.";

    public const string IntervalNote =
        "[a, b] is a 95% interval: Wilson over images with one seed; with several, Student t across seeds (for shares, widened to cover the Wilson interval of all seeds' images pooled); a bare number is a single measurement. The base row is the model that never saw the concept, attacked the same way: the floor of every extraction figure.";

    /// <summary>What the differences table's intervals are and what its star means.</summary>
    public static string DifferenceNote(int seeds) => seeds > 1
        ? "Arm minus standard at the same seed, averaged over seeds, with a 95% Student t interval across seeds, widened where needed to cover the Newcombe interval of the pooled images; * marks an interval that excludes 0 — the rule the reading's \"clearly\" uses. FD has no interval within a seed: its differences are t intervals across seeds."
        : "Arm minus standard with the 95% Newcombe interval of the difference of two shares (over images); * marks an interval that excludes 0 — the rule the reading's \"clearly\" uses. One seed: provisional (a single fine-tune per arm). FD has no interval within a seed, so one seed gives only the difference.";

    public static string Question(ExperimentSetup setup) =>
        $"Can Excise keep a fine-tuned diffusion model from producing a prohibited concept — the {setup.ConceptNoun} named “{setup.Concept.Phrase}” — "
        + "while it still learns everything else from the same images?";

    /// <summary>One line that says what was run: preset, arms, seeds, budgets, machine, time.</summary>
    public static string SetupSummary(ExperimentResults results)
    {
        var s = results.Setup;
        return $"Preset {s.Execution.Preset}: {Count(s.Execution.Arms.Count, "arm")} × {Count(s.Execution.Seeds, "seed")} fine-tuned for "
               + $"{Count(s.Finetune.Steps, "step")} (batch {Integer(s.Finetune.Batch)}) on {Integer(s.Concept.FinetuneImages)} images, "
               + $"{Integer(s.Concept.StampedImages)} of them stamped with the {s.ConceptNoun}; {Count(s.Attacks.ImagesPerPrompt, "image")} per prompt "
               + $"({Count(s.Attacks.SamplingSteps, "step")} of {s.Attacks.Sampler}), attacks {string.Join(", ", s.Attacks.Names)}; {Duration(results.ElapsedSeconds)} on {s.Execution.Machine} ({Threading(s.Execution)})"
               + Reused(results) + ".";
    }

    /// <summary>How the detector-masked-loss arm's masks were made and how well they match the logo's real placement.</summary>
    public static string DetectorMasksSentence(Evaluation.Judges.DetectorMaskReport masks)
    {
        var made = $"a detector of the logo with its own seed ({masks.DetectorId}) flagged {Integer(masks.Masks)} training images and occlusion "
                   + $"({masks.Settings.Patch}-pixel squares, stride {masks.Settings.Stride}, cut at {Decimal(masks.Settings.Threshold, 2)} of the peak) masked where it looks";
        if (masks.Quality is not { } q) return made + ".";
        return made + $"; against the stamper's record: {Percent(q.DetectionRecall.Rate)} of the {Integer(q.Carrying)} stamped images flagged "
               + $"(precision {Percent(q.DetectionPrecision.Rate)}), mean IoU {Decimal(q.MeanIoU, 2)}, {Percent(q.Coverage)} of the logo's pixels covered "
               + $"({Percent(q.CoverageWithMargin)} with the {q.Margin}-pixel margin the loss adds), {Percent(q.MaskedShareOfRest)} of the other pixels of stamped images hidden.";
    }

    /// <summary>", 6 of 6 arm runs reused from an earlier invocation (not in this time)", or nothing.</summary>
    public static string Reused(ExperimentResults results) =>
        results.Setup.Execution.ReusedArmRuns > 0
            ? $", {Integer(results.Setup.Execution.ReusedArmRuns)} of {Count(results.Runs.Count, "arm run")} reused from an earlier invocation (not in this time)"
            : "";

    /// <summary>"2 threads", "2 threads, 2 arms at a time with 1 thread each" or "1 thread on each of 2 Open MPI ranks (the arm runs divided among them)".</summary>
    public static string Threading(ExecutionSetup s) =>
        Count(s.Threads, "thread") + (s.Ranks > 1 ? $" on each of {Integer(s.Ranks)} Open MPI ranks (the arm runs divided among them)" : "")
        + (s.ArmWorkers > 1 ? $", {Integer(s.ArmWorkers)} arms at a time with {Count(s.ThreadsPerArm, "thread")} each" : "");

    /// <summary>"1 h 02 min", "3 min 07 s", "12.4 s".</summary>
    public static string Duration(double seconds)
    {
        if (!double.IsFinite(seconds) || seconds < 0) return "n/a";
        if (seconds < 60) return $"{Decimal(seconds, 1)} s";
        var span = TimeSpan.FromSeconds(Math.Round(seconds));
        return span.TotalHours >= 1
            ? $"{Integer((int)span.TotalHours)} h {span.Minutes:00} min"
            : $"{span.Minutes} min {span.Seconds:00} s";
    }

    public static string Count(int n, string noun) => $"{Integer(n)} {noun}{(n == 1 ? "" : "s")}";

    public static string Integer(long n) => n.ToString("N0", CultureInfo.InvariantCulture);

    public static string Decimal(double value, int decimals) =>
        double.IsNaN(value) ? "n/a" : value.ToString("F" + decimals, CultureInfo.InvariantCulture);

    /// <summary>Three significant digits whatever the magnitude (certificate shares are often ~1e-9).</summary>
    public static string Significant(double value) =>
        double.IsNaN(value) ? "n/a" : value.ToString("G3", CultureInfo.InvariantCulture);

    public static string Percent(double share, int decimals = 1) =>
        double.IsNaN(share) ? "n/a" : (share * 100).ToString("F" + decimals, CultureInfo.InvariantCulture) + "%";

    /// <summary>Round-trip text of a figure, for machine comparison with results.json ("" when absent).</summary>
    public static string RoundTrip(double? value) => value?.ToString("R", CultureInfo.InvariantCulture) ?? "";
}
