using System.Globalization;
using Excise.Evaluation.Metrics;

namespace Excise.Experiment;

/// <summary>
/// The report's plain-language reading, generated from the figures: what each defence did to extraction
/// (named, paraphrased, inverted, unasked) and to quality. With one seed a difference is clear when the 95% intervals
/// separate; with several it is clear when the 95% t interval of the arm's difference from standard, seed by seed,
/// excludes 0 (a seed gives every arm the same data order and noise, so its effect cancels in the difference).
/// Nothing here is written in advance; change the numbers and the sentences change.
/// </summary>
public static class ExperimentReading
{
    const string Standard = "standard", Named = "prompt", Unasked = "baseline-rate";

    public static IReadOnlyList<string> Read(ExperimentResults results)
    {
        var lines = new List<string>();
        var setup = results.Setup;
        if (!setup.QualityMeaningful)
            lines.Add($"This is the {setup.Preset} preset: the models are too small and too briefly trained for these figures to mean anything; it checks that the pipeline runs.");
        var standard = results.Summary.FirstOrDefault(a => a.Arm == Standard);
        if (standard is null)
        {
            lines.Add("The standard arm was not run, so there is no undefended model to compare the defences with.");
            return lines;
        }

        var named = standard.Extraction.GetValueOrDefault(Named);
        var unasked = standard.Extraction.GetValueOrDefault(Unasked);
        if (named is not null && unasked is not null)
        {
            string learned = named.ClearlyAbove(unasked)
                ? "so it learned to draw the logo on demand"
                : "no clearer than without naming it, so at this budget the model did not learn to produce the logo on demand — the defences have nothing to prevent and their extraction figures cannot show an effect";
            lines.Add($"Without a defence the logo appears in {Rate(named)} of images when the prompt names \"{setup.Concept}\" and in {Rate(unasked)} when it does not, {learned}.");
        }

        foreach (var arm in results.Summary.Where(a => a.Arm != Standard))
            lines.Add(DescribeArm(results, arm, standard, setup));

        var projections = results.Summary.Where(a => a.Arm.EndsWith("-projection", StringComparison.Ordinal)).ToList();
        bool conceptLearned = named is not null && unasked is not null && named.ClearlyAbove(unasked);
        foreach (var arm in projections)
            lines.Add(conceptLearned ? PaperClaim(results, arm, standard)
                : $"The paper's claim cannot be tested for {arm.Arm} at this budget: the undefended model did not learn the concept, so there was nothing to prevent.");
        if (results.Summary.Any(a => a.CertificateWorstShare is not null))
            lines.Add("Certificates: " + string.Join("; ", results.Summary.Where(a => a.CertificateWorstShare is not null)
                .Select(a => $"{a.Arm} keeps {Number(a.CertificateWorstShare!.Value, "G2")} of its learned K/V change inside the concept subspace")) +
                " (0 would be exact; the update projection is exact up to float rounding, the gradient projection is not once AdamW's moments and weight decay act).");
        return lines;
    }

    static string DescribeArm(ExperimentResults results, ArmSummary arm, ArmSummary standard, ExperimentSetup setup)
    {
        var parts = new List<string>();
        var directions = new Dictionary<string, int>();
        foreach (var (attack, estimate) in arm.Extraction)
        {
            if (!standard.Extraction.TryGetValue(attack, out var reference)) continue;
            string name = attack switch { Named => "named", Unasked => "unasked", _ => $"under {attack}" };
            var paired = Paired(results, arm.Arm, Extraction(attack));
            string difference = paired is null ? "" : $"; seed by seed {Points(paired)}";
            directions[attack] = Direction(estimate, reference, paired);
            parts.Add($"{name} {Rate(estimate)} ({Compare(directions[attack])} standard's {Rate(reference)}{difference})");
        }
        var strongest = arm.Extraction.Where(kv => kv.Key != Unasked).OrderByDescending(kv => kv.Value.Value).FirstOrDefault();
        string sentence = $"{arm.Arm}: logo {string.Join(", ", parts)}.";
        if (strongest.Value is not null)
            sentence += $" Its strongest attack is {strongest.Key} at {Rate(strongest.Value)}.";
        if (directions.GetValueOrDefault(Unasked) > 0)
            sentence += " The logo appears unasked more often than without a defence: the words were decoupled from the look, but the model still draws it.";
        sentence += " " + Quality(results, arm, standard, setup);
        return sentence;
    }

    static string Quality(ExperimentResults results, ArmSummary arm, ArmSummary standard, ExperimentSetup setup)
    {
        var parts = new List<string>();
        if (arm.Fidelity is { } f && standard.Fidelity is { } sf)
            parts.Add($"semantic fidelity {Rate(f)} vs {Rate(sf)} ({Direction(f, sf, Paired(results, arm.Arm, Fidelity)) switch {
                0 => "indistinguishable at 95%", < 0 => "lower", _ => "higher" }})");
        if (arm.Fd is { } fd && standard.Fd is { } sfd && sfd.Value > 0)
        {
            string ratio = $"{Number(fd.Value / sfd.Value, "F2")}×";
            if (PairedFd(results, arm.Arm) is { } d)
                ratio += $"; seed by seed {SignedNumber(d.Value)} [{SignedNumber(d.Lower)}, {SignedNumber(d.Upper)}], " +
                         (d.Upper < 0 ? "lower" : d.Lower > 0 ? "higher" : "indistinguishable at 95%");
            parts.Add($"in-domain FD {Number(fd.Value, "F2")} vs {Number(sfd.Value, "F2")} ({ratio})");
        }
        if (parts.Count == 0) return "";
        return "Quality: " + string.Join("; ", parts) + (setup.QualityMeaningful ? "." : " (not meaningful at this size).");
    }

    static string PaperClaim(ExperimentResults results, ArmSummary arm, ArmSummary standard)
    {
        var reduced = new List<string>();
        var notReduced = new List<string>();
        foreach (var (attack, estimate) in arm.Extraction.Where(kv => kv.Key != Unasked))
            if (standard.Extraction.TryGetValue(attack, out var reference))
                (Direction(estimate, reference, Paired(results, arm.Arm, Extraction(attack))) < 0 ? reduced : notReduced).Add(attack);
        bool fidelityKept = arm.Fidelity is null || standard.Fidelity is null
            || Direction(arm.Fidelity, standard.Fidelity, Paired(results, arm.Arm, Fidelity)) == 0;
        bool fdKept = PairedFd(results, arm.Arm) is not { } fd || (fd.Lower <= 0 && fd.Upper >= 0);
        string verdict = notReduced.Count == 0 && reduced.Count > 0
            ? (fidelityKept && fdKept ? "holds here" : $"holds for extraction but {(fidelityKept ? "FD" : "fidelity")} changed")
            : reduced.Count == 0 ? "does not hold here: no attack's extraction is clearly lower than without a defence"
            : $"holds only partly: extraction is clearly lower for {string.Join(", ", reduced)} but not for {string.Join(", ", notReduced)}";
        return $"The paper's claim (projection drastically reduces extraction while quality stays indistinguishable) for {arm.Arm}: {verdict}.";
    }

    /// <summary>
    /// The arm's share minus standard's, seed by seed, as a mean with a t interval over seeds; null with fewer than two
    /// seeds in common. The interval is never narrower than the images alone allow (a normal interval for the difference
    /// of the two pooled shares), so seeds whose differences happen to agree do not make it vanish.
    /// </summary>
    static Estimate? Paired(ExperimentResults results, string arm, Func<ArmSeedOutcome, ProportionEstimate?> pick)
    {
        var pairs = SeedPairs(results, arm, pick);
        if (pairs.Count < 2 || pairs.Any(p => p.Arm is not { Trials: > 0 } || p.Standard is not { Trials: > 0 })) return null;
        var t = Estimate.OfValues(pairs.Select(p => p.Arm!.Rate - p.Standard!.Rate).ToList());
        var (a, s) = (ProportionEstimate.Pooled(pairs.Select(p => p.Arm!)), ProportionEstimate.Pooled(pairs.Select(p => p.Standard!)));
        double half = Math.Max(t.Upper - t.Value, ProportionEstimate.Z95 * Math.Sqrt(a.Rate * (1 - a.Rate) / a.Trials + s.Rate * (1 - s.Rate) / s.Trials));
        return t with { Lower = t.Value - half, Upper = t.Value + half };
    }

    /// <summary>
    /// The arm's in-domain FD minus standard's, seed by seed, with a t interval over seeds; null with fewer than two
    /// seeds in common. FD has no interval within a seed, so one seed gives a ratio and no verdict.
    /// </summary>
    static Estimate? PairedFd(ExperimentResults results, string arm)
    {
        static double? Fd(ArmSeedOutcome o) => o.Attacks.GetValueOrDefault(Unasked)?.Distribution?.Fid;
        var differences = SeedPairs(results, arm, Fd).Select(p => p.Arm - p.Standard).ToList();
        return differences.Count < 2 || differences.Any(d => d is null || !double.IsFinite(d.Value)) ? null
            : Estimate.OfValues(differences.Select(d => d!.Value).ToList());
    }

    /// <summary>One figure of the arm and of standard for every seed both ran.</summary>
    static List<(T Arm, T Standard)> SeedPairs<T>(ExperimentResults results, string arm, Func<ArmSeedOutcome, T> pick) =>
        results.Runs.Where(r => r.Arm == arm)
            .Join(results.Runs.Where(r => r.Arm == Standard), r => r.SeedIndex, r => r.SeedIndex, (a, s) => (pick(a), pick(s)))
            .ToList();

    static Func<ArmSeedOutcome, ProportionEstimate?> Extraction(string attack) => o => o.Attacks.GetValueOrDefault(attack)?.Extraction?.Rate;

    static ProportionEstimate? Fidelity(ArmSeedOutcome o) => o.Attacks.GetValueOrDefault(Unasked)?.Fidelity?.Overall;

    /// <summary>−1 clearly below the reference, +1 clearly above, 0 not clearly different: seed by seed when paired figures exist.</summary>
    static int Direction(Estimate value, Estimate reference, Estimate? paired) =>
        paired is not null ? (paired.Upper < 0 ? -1 : paired.Lower > 0 ? 1 : 0)
        : value.ClearlyBelow(reference) ? -1 : reference.ClearlyBelow(value) ? 1 : 0;

    static string Compare(int direction) => direction switch { < 0 => "clearly below", > 0 => "clearly above", _ => "not clearly different from" };

    /// <summary>"−19 points [−34, −5]": a difference of shares in percentage points.</summary>
    static string Points(Estimate d) =>
        $"{SignedPoints(d.Value)} points [{SignedPoints(d.Lower)}, {SignedPoints(d.Upper)}]";

    static string SignedPoints(double v) => (v * 100).ToString("+0;−0;0", CultureInfo.InvariantCulture);

    static string Rate(Estimate e) => double.IsNaN(e.Value) ? "n/a" :
        e.HasInterval ? $"{Percent(e.Value)} [{Percent(e.Lower)}, {Percent(e.Upper)}]" : Percent(e.Value);

    static string Percent(double v) => (v * 100).ToString("F0", CultureInfo.InvariantCulture) + "%";

    static string Number(double v, string format) => v.ToString(format, CultureInfo.InvariantCulture);

    static string SignedNumber(double v) => v.ToString("+0;−0;0", CultureInfo.InvariantCulture);
}
