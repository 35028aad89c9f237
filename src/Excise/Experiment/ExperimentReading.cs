using System.Globalization;

namespace Excise.Experiment;

/// <summary>
/// The report's plain-language reading, generated from the figures: what each defence did to extraction
/// (named, paraphrased, inverted, unasked) and to quality, judged by whether 95% intervals separate. Nothing
/// here is written in advance; change the numbers and the sentences change.
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
            lines.Add(DescribeArm(arm, standard, setup));

        var projections = results.Summary.Where(a => a.Arm.EndsWith("-projection", StringComparison.Ordinal)).ToList();
        bool conceptLearned = named is not null && unasked is not null && named.ClearlyAbove(unasked);
        foreach (var arm in projections)
            lines.Add(conceptLearned ? PaperClaim(arm, standard)
                : $"The paper's claim cannot be tested for {arm.Arm} at this budget: the undefended model did not learn the concept, so there was nothing to prevent.");
        if (results.Summary.Any(a => a.CertificateWorstShare is not null))
            lines.Add("Certificates: " + string.Join("; ", results.Summary.Where(a => a.CertificateWorstShare is not null)
                .Select(a => $"{a.Arm} keeps {Number(a.CertificateWorstShare!.Value, "G2")} of its learned K/V change inside the concept subspace")) +
                " (0 would be exact; the update projection is exact up to float rounding, the gradient projection is not once AdamW's moments and weight decay act).");
        return lines;
    }

    static string DescribeArm(ArmSummary arm, ArmSummary standard, ExperimentSetup setup)
    {
        var parts = new List<string>();
        foreach (var (attack, estimate) in arm.Extraction)
        {
            if (!standard.Extraction.TryGetValue(attack, out var reference)) continue;
            string name = attack switch { Named => "named", Unasked => "unasked", _ => $"under {attack}" };
            parts.Add($"{name} {Rate(estimate)} ({Compare(estimate, reference)} standard's {Rate(reference)})");
        }
        var strongest = arm.Extraction.Where(kv => kv.Key != Unasked).OrderByDescending(kv => kv.Value.Value).FirstOrDefault();
        string sentence = $"{arm.Arm}: logo {string.Join(", ", parts)}.";
        if (strongest.Value is not null)
            sentence += $" Its strongest attack is {strongest.Key} at {Rate(strongest.Value)}.";
        if (arm.Extraction.GetValueOrDefault(Unasked) is { } unasked && standard.Extraction.GetValueOrDefault(Unasked) is { } standardUnasked
            && unasked.ClearlyAbove(standardUnasked))
            sentence += " The logo appears unasked more often than without a defence: the words were decoupled from the look, but the model still draws it.";
        sentence += " " + Quality(arm, standard, setup);
        return sentence;
    }

    static string Quality(ArmSummary arm, ArmSummary standard, ExperimentSetup setup)
    {
        var parts = new List<string>();
        if (arm.Fidelity is { } f && standard.Fidelity is { } sf)
            parts.Add($"semantic fidelity {Rate(f)} vs {Rate(sf)} ({(Overlap(f, sf) ? "indistinguishable at 95%" : f.Value < sf.Value ? "lower" : "higher")})");
        if (arm.Fd is { } fd && standard.Fd is { } sfd && sfd.Value > 0)
            parts.Add($"in-domain FD {Number(fd.Value, "F2")} vs {Number(sfd.Value, "F2")} ({Number(fd.Value / sfd.Value, "F2")}×)");
        if (parts.Count == 0) return "";
        return "Quality: " + string.Join("; ", parts) + (setup.QualityMeaningful ? "." : " (not meaningful at this size).");
    }

    static string PaperClaim(ArmSummary arm, ArmSummary standard)
    {
        var reduced = new List<string>();
        var notReduced = new List<string>();
        foreach (var (attack, estimate) in arm.Extraction.Where(kv => kv.Key != Unasked))
            if (standard.Extraction.TryGetValue(attack, out var reference))
                (estimate.ClearlyBelow(reference) ? reduced : notReduced).Add(attack);
        bool qualityKept = (arm.Fidelity is null || standard.Fidelity is null || Overlap(arm.Fidelity, standard.Fidelity));
        string verdict = notReduced.Count == 0 && reduced.Count > 0
            ? (qualityKept ? "holds here" : "holds for extraction but fidelity changed")
            : reduced.Count == 0 ? "does not hold here: no attack's extraction is clearly lower than without a defence"
            : $"holds only partly: extraction is clearly lower for {string.Join(", ", reduced)} but not for {string.Join(", ", notReduced)}";
        return $"The paper's claim (projection drastically reduces extraction while quality stays indistinguishable) for {arm.Arm}: {verdict}.";
    }

    static bool Overlap(Estimate a, Estimate b) => !a.ClearlyBelow(b) && !b.ClearlyBelow(a);

    static string Compare(Estimate value, Estimate reference) =>
        value.ClearlyBelow(reference) ? "clearly below" : reference.ClearlyBelow(value) ? "clearly above" : "not clearly different from";

    static string Rate(Estimate e) => double.IsNaN(e.Value) ? "n/a" :
        e.HasInterval ? $"{Percent(e.Value)} [{Percent(e.Lower)}, {Percent(e.Upper)}]" : Percent(e.Value);

    static string Percent(double v) => (v * 100).ToString("F0", CultureInfo.InvariantCulture) + "%";

    static string Number(double v, string format) => v.ToString(format, CultureInfo.InvariantCulture);
}
