using Excise.Evaluation.Metrics;

namespace Excise.Experiment;

/// <summary>
/// How the experiment compares two figures of the same seeds — an arm with standard, inversion with its 0-step control —
/// with one rule (<see cref="Estimate.OfDifferences"/>). The reading, results.md and report.html all call these, so a
/// difference is "clear" in one place exactly when it is in the others.
/// </summary>
public static class ArmComparison
{
    public const string Standard = "standard", Named = "prompt", Unasked = "baseline-rate",
                        Inversion = "inversion", InversionControl = "inversion-control";

    /// <summary>
    /// The arms compared with standard: every summarised arm except standard itself and the never-saw-it floor (which is
    /// read beside the attacks, not as a defence). Empty when standard was not run: there is nothing to compare with.
    /// </summary>
    public static IEnumerable<ArmSummary> Defences(ExperimentResults results) =>
        StandardRan(results) ? results.Summary.Where(a => a.Arm is not Standard and not ArmNames.Floor) : [];

    /// <summary>Whether standard was run: without it no comparison exists (a table of them is left out, not left empty).</summary>
    public static bool StandardRan(ExperimentResults results) => results.Summary.Any(a => a.Arm == Standard);

    /// <summary>The arm's share minus standard's, seed by seed; null when either lacks the figure at some shared seed.</summary>
    public static Estimate? Share(ExperimentResults results, string arm, Func<ArmSeedOutcome, ProportionEstimate?> pick) =>
        Differences(SeedPairs(results, arm, pick));

    /// <summary>
    /// The arm's in-domain FD minus standard's, seed by seed, with a t interval over seeds; null with fewer than two seeds
    /// in common. FD has no interval within a seed, so one seed gives a ratio and no verdict.
    /// </summary>
    public static Estimate? Fd(ExperimentResults results, string arm)
    {
        static double? Fd(ArmSeedOutcome o) => o.Attacks.GetValueOrDefault(Unasked)?.Distribution?.Fid;
        var differences = SeedPairs(results, arm, Fd).Select(p => p.Arm - p.Standard).ToList();
        return differences.Count < 2 || differences.Any(d => d is null || !double.IsFinite(d.Value)) ? null
            : Estimate.OfValues(differences.Select(d => d!.Value).ToList());
    }

    /// <summary>
    /// What textual inversion learned on one arm: its rate minus its 0-step control's (T − T₀), seed by seed; null when
    /// either attack was not run. The control uses the same prompts and placeholder, so the word alone cancels.
    /// </summary>
    public static Estimate? InversionGain(IEnumerable<ArmSeedOutcome> runs) =>
        Differences(runs.Select(r => (Extraction(Inversion)(r), Extraction(InversionControl)(r))).ToList());

    /// <summary>
    /// What naming the concept adds on one arm: the named rate minus the unasked rate (the lift), seed by seed; null
    /// when either attack was not run. A defence that hides the logo from its name but lets it appear unasked has a small
    /// lift and a high unasked rate: read the two together.
    /// </summary>
    public static Estimate? Lift(IEnumerable<ArmSeedOutcome> runs) =>
        Differences(runs.Select(r => (Extraction(Named)(r), Extraction(Unasked)(r))).ToList());

    public static Func<ArmSeedOutcome, ProportionEstimate?> Extraction(string attack) => o => o.Attacks.GetValueOrDefault(attack)?.Extraction?.Rate;

    public static ProportionEstimate? Fidelity(ArmSeedOutcome o) => o.Attacks.GetValueOrDefault(Unasked)?.Fidelity?.Overall;

    static Estimate? Differences(IReadOnlyList<(ProportionEstimate? A, ProportionEstimate? B)> pairs) =>
        pairs.Count == 0 || pairs.Any(p => p.A is not { Trials: > 0 } || p.B is not { Trials: > 0 }) ? null
            : Estimate.OfDifferences(pairs.Select(p => (p.A!, p.B!)).ToList());

    /// <summary>One figure of the arm and of standard for every seed both ran.</summary>
    static List<(T Arm, T Standard)> SeedPairs<T>(ExperimentResults results, string arm, Func<ArmSeedOutcome, T> pick) =>
        results.Runs.Where(r => r.Arm == arm)
            .Join(results.Runs.Where(r => r.Arm == Standard), r => r.SeedIndex, r => r.SeedIndex, (a, s) => (pick(a), pick(s)))
            .ToList();
}
