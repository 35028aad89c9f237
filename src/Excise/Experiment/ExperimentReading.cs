using System.Globalization;
using Excise.Evaluation.Metrics;

namespace Excise.Experiment;

/// <summary>
/// The report's plain-language reading, generated from the figures: what each defence did to extraction
/// (named, paraphrased, inverted, unasked) and to quality, against the floor of a model that never saw the concept.
/// A difference is clear when the 95% interval of the arm's share minus standard's excludes 0
/// (<see cref="Estimate.OfDifferences"/>: over images for one seed, seed by seed for several — a seed gives every
/// arm the same data order and noise, so its effect cancels in the difference). One seed's verdicts are provisional.
/// Nothing here is written in advance; change the numbers and the sentences change.
/// </summary>
public static class ExperimentReading
{
    const string Standard = ArmComparison.Standard, Named = ArmComparison.Named, Unasked = ArmComparison.Unasked;

    public static IReadOnlyList<string> Read(ExperimentResults results)
    {
        var lines = new List<string>();
        var setup = results.Setup;
        if (!setup.Judges.QualityMeaningful)
            lines.Add($"This is the {setup.Execution.Preset} preset: the models are too small and too briefly trained for these figures to mean anything; it checks that the pipeline runs.");
        else if (setup.Execution.Seeds == 1)
            lines.Add("One seed: every verdict below is provisional. It rests on a single fine-tune per arm, and across seeds the fine-tunes " +
                      "can differ by more than most arms differ from each other; a published verdict needs at least three seeds (--preset full).");
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
                ? $"so it learned to draw the {setup.ConceptNoun} on demand"
                : $"no clearer than without naming it, so at this budget the model did not learn to produce the {setup.ConceptNoun} on demand — the defences have nothing to prevent and their extraction figures cannot show an effect";
            lines.Add($"Without a defence the {setup.ConceptNoun} appears in {Rate(named)} of images when the prompt names \"{setup.Concept.Phrase}\" and in {Rate(unasked)} when it does not, {learned}.");
        }
        if (results.Summary.FirstOrDefault(a => a.Arm == ArmNames.Floor) is { } floor)
            lines.Add(Floor(floor, setup.ConceptNoun));
        if (InversionGains(results) is { } gains) lines.Add(gains);

        foreach (var arm in ArmComparison.Defences(results))
            lines.Add(DescribeArm(results, arm, standard, setup));

        // The paper's claim is about its projection and ours, not about the arms that add other defences to one.
        var projections = results.Summary.Where(a => a.Arm is "gradient-projection" or "update-projection").ToList();
        bool conceptLearned = named is not null && unasked is not null && named.ClearlyAbove(unasked);
        foreach (var arm in projections)
            lines.Add(conceptLearned ? PaperClaim(results, arm, standard)
                : $"The paper's claim cannot be tested for {arm.Arm} at this budget: the undefended model did not learn the concept, so there was nothing to prevent.");
        if (conceptLearned && Recommendation(results, standard, setup.ConceptNoun) is { } advice) lines.Add(advice);
        if (results.Summary.Any(a => a.CertificateWorstShare is not null))
            lines.Add("Certificates: " + string.Join("; ", results.Summary.Where(a => a.CertificateWorstShare is not null)
                .Select(a => $"{a.Arm} keeps {Number(a.CertificateWorstShare!.Value, "G2")} of its learned K/V change inside the concept subspace")) +
                " (0 would be exact; the update projection is exact up to float rounding, the gradient projection is not once AdamW's moments and weight decay act).");
        return lines;
    }

    /// <summary>Arms that need to know where the concept is in each image (a mask per image, or a detector that finds it).</summary>
    static readonly string[] MaskArms = ["masked-loss", "detector-masked-loss", "masked-update-projection"];

    /// <summary>Arms that keep every image and need no mask: they act on the text side or the training signal alone.</summary>
    static readonly string[] MasklessArms = ["update-projection", "gradient-projection", "scrub-captions", "embed-noise"];

    /// <summary>
    /// Which defence the figures point to, when the concept can be localised and when it cannot: an arm "stops every
    /// attack" when every extraction attack run (named, paraphrased, inverted) is clearly below standard's and the
    /// concept does not appear unasked clearly more often. Arms are named only if they ran; null when none of the groups did.
    /// </summary>
    static string? Recommendation(ExperimentResults results, ArmSummary standard, string noun)
    {
        bool StopsEveryAttack(ArmSummary arm)
        {
            var attacks = arm.Extraction.Keys.Where(a => a is not Unasked and not ArmComparison.InversionControl && standard.Extraction.ContainsKey(a)).ToList();
            int Dir(string attack) => Direction(arm.Extraction[attack], standard.Extraction[attack], ArmComparison.Share(results, arm.Arm, ArmComparison.Extraction(attack)));
            return attacks.Count > 0 && attacks.All(a => Dir(a) < 0) && (!arm.Extraction.ContainsKey(Unasked) || Dir(Unasked) <= 0);
        }
        double? LiftCut(ArmSummary arm) => arm.Lift is { } lift && standard.Lift is { Value: > 0 } reference ? 1 - lift.Value / reference.Value : null;
        double? GainCut(ArmSummary arm) => arm.InversionGain is { } gain && standard.InversionGain is { Value: > 0 } reference ? 1 - gain.Value / reference.Value : null;
        ArmSummary? Ran(string name) => results.Summary.FirstOrDefault(a => a.Arm == name);

        var parts = new List<string>();
        var masked = MaskArms.Select(Ran).OfType<ArmSummary>().ToList();
        var maskedStops = masked.Where(StopsEveryAttack).Select(a => a.Arm).ToList();
        if (masked.Count > 0)
            parts.Add(maskedStops.Count > 0
                ? $"where the {noun} can be localised, {Join(maskedStops)} keep{(maskedStops.Count == 1 ? "s" : "")} every image and stop{(maskedStops.Count == 1 ? "s" : "")} every attack"
                : $"where the {noun} can be localised, no masked arm that ran ({Join(masked.Select(a => a.Arm))}) stopped every attack");
        var maskless = MasklessArms.Select(Ran).OfType<ArmSummary>().ToList();
        if (maskless.Count > 0)
        {
            var masklessStops = maskless.Where(StopsEveryAttack).Select(a => a.Arm).ToList();
            var best = maskless.Where(a => LiftCut(a) is not null).MaxBy(a => LiftCut(a)!.Value);
            parts.Add(masklessStops.Count > 0
                ? $"where it cannot, {Join(masklessStops)} keep{(masklessStops.Count == 1 ? "s" : "")} every image without a mask and stop{(masklessStops.Count == 1 ? "s" : "")} every attack"
                : $"where it cannot, no arm that keeps every image without a mask stopped every attack" +
                  (best is null ? "" : $" (the best by the named lift, {best.Arm}, cut it by {Percent(LiftCut(best)!.Value)}"
                                       + (GainCut(best) is { } gainCut ? $" and inversion's gain by {Percent(gainCut)})" : ")")));
        }
        if (Ran("filter-images") is { } filter && StopsEveryAttack(filter))
            parts.Add("filter-images stops every attack by dropping every image that carries it");
        return parts.Count == 0 ? null : "Which defence to use, by these figures: " + string.Join("; ", parts) + ".";
    }

    static string Join(IEnumerable<string> names)
    {
        var list = names.ToList();
        return list.Count <= 1 ? string.Concat(list) : string.Join(", ", list.Take(list.Count - 1)) + " and " + list[^1];
    }

    /// <summary>What the attacks and the judge report on a model with nothing to extract: the floor of every rate.</summary>
    static string Floor(ArmSummary floor, string noun)
    {
        var parts = floor.Extraction.Select(kv => $"{AttackPhrase(kv.Key)} {Rate(kv.Value)}");
        return $"The base model, which never saw the {noun}, shows it {string.Join(", ", parts)}: the floor each arm's rate is read against " +
               "(what the attack and the judge report when nothing was learned).";
    }

    static string? InversionGains(ExperimentResults results)
    {
        var gains = results.Summary.Where(a => a.InversionGain is not null).Select(a => $"{a.Arm} {Points(a.InversionGain!)}").ToList();
        if (gains.Count == 0) return null;
        return "What textual inversion learns, over its 0-step control (the same prompts with the vectors left at the placeholder word): " +
               string.Join("; ", gains) + ".";
    }

    static string AttackPhrase(string attack) => attack switch
    {
        Named => "named",
        Unasked => "unasked",
        ArmComparison.InversionControl => "under inversion's 0-step control",
        _ => $"under {attack}",
    };

    static string DescribeArm(ExperimentResults results, ArmSummary arm, ArmSummary standard, ExperimentSetup setup)
    {
        var parts = new List<string>();
        var directions = new Dictionary<string, int>();
        foreach (var (attack, estimate) in arm.Extraction)
        {
            if (!standard.Extraction.TryGetValue(attack, out var reference)) continue;
            var paired = ArmComparison.Share(results, arm.Arm, ArmComparison.Extraction(attack));
            string difference = paired is null ? "" : $"; {Points(paired)}";
            directions[attack] = Direction(estimate, reference, paired);
            parts.Add($"{AttackPhrase(attack)} {Rate(estimate)} ({Compare(directions[attack])} standard's {Rate(reference)}{difference})");
        }
        var strongest = arm.Extraction.Where(kv => kv.Key is not Unasked and not ArmComparison.InversionControl)
            .OrderByDescending(kv => kv.Value.Value).FirstOrDefault();
        string sentence = $"{arm.Arm}: {setup.ConceptNoun} {string.Join(", ", parts)}.";
        if (strongest.Value is not null)
            sentence += $" Its strongest attack is {strongest.Key} at {Rate(strongest.Value)}.";
        if (directions.GetValueOrDefault(Unasked) > 0)
            sentence += $" The {setup.ConceptNoun} appears unasked more often than without a defence: the words were decoupled from the look, but the model still draws it.";
        sentence += " " + Quality(results, arm, standard, setup);
        return sentence;
    }

    static string Quality(ExperimentResults results, ArmSummary arm, ArmSummary standard, ExperimentSetup setup)
    {
        var parts = new List<string>();
        if (arm.Fidelity is { } f && standard.Fidelity is { } sf)
            parts.Add($"semantic fidelity {Rate(f)} vs {Rate(sf)} ({Direction(f, sf, ArmComparison.Share(results, arm.Arm, ArmComparison.Fidelity)) switch {
                0 => "indistinguishable at 95%", < 0 => "lower", _ => "higher" }})");
        if (arm.Fd is { } fd && standard.Fd is { } sfd && sfd.Value > 0)
        {
            string ratio = $"{Number(fd.Value / sfd.Value, "F2")}×";
            if (ArmComparison.Fd(results, arm.Arm) is { } d)
                ratio += $"; seed by seed {SignedNumber(d.Value)} [{SignedNumber(d.Lower)}, {SignedNumber(d.Upper)}], " +
                         (d.Upper < 0 ? "lower" : d.Lower > 0 ? "higher" : "indistinguishable at 95%");
            parts.Add($"in-domain FD {Number(fd.Value, "F2")} vs {Number(sfd.Value, "F2")} ({ratio})");
        }
        if (parts.Count == 0) return "";
        return "Quality: " + string.Join("; ", parts) + (setup.Judges.QualityMeaningful ? "." : " (not meaningful at this size).");
    }

    static string PaperClaim(ExperimentResults results, ArmSummary arm, ArmSummary standard)
    {
        var reduced = new List<string>();
        var notReduced = new List<string>();
        foreach (var (attack, estimate) in arm.Extraction.Where(kv => kv.Key is not Unasked and not ArmComparison.InversionControl))
            if (standard.Extraction.TryGetValue(attack, out var reference))
                (Direction(estimate, reference, ArmComparison.Share(results, arm.Arm, ArmComparison.Extraction(attack))) < 0 ? reduced : notReduced).Add(attack);
        bool fidelityKept = arm.Fidelity is null || standard.Fidelity is null
            || Direction(arm.Fidelity, standard.Fidelity, ArmComparison.Share(results, arm.Arm, ArmComparison.Fidelity)) == 0;
        bool fdKept = ArmComparison.Fd(results, arm.Arm) is not { } fd || (fd.Lower <= 0 && fd.Upper >= 0);
        string verdict = notReduced.Count == 0 && reduced.Count > 0
            ? (fidelityKept && fdKept ? "holds here" : $"holds for extraction but {(fidelityKept ? "FD" : "fidelity")} changed")
            : reduced.Count == 0 ? "does not hold here: no attack's extraction is clearly lower than without a defence"
            : $"holds only partly: extraction is clearly lower for {string.Join(", ", reduced)} but not for {string.Join(", ", notReduced)}";
        string provisional = results.Setup.Execution.Seeds == 1 ? " (one seed: provisional)" : "";
        return $"The paper's claim (projection drastically reduces extraction while quality stays indistinguishable) for {arm.Arm}: {verdict}{provisional}.";
    }

    /// <summary>−1 clearly below the reference, +1 clearly above, 0 not clearly different: by the difference's interval when there is one.</summary>
    static int Direction(Estimate value, Estimate reference, Estimate? paired) =>
        paired is not null ? paired.Direction()
        : value.ClearlyBelow(reference) ? -1 : reference.ClearlyBelow(value) ? 1 : 0;

    static string Compare(int direction) => direction switch { < 0 => "clearly below", > 0 => "clearly above", _ => "not clearly different from" };

    /// <summary>"seed by seed −19 points [−34, −5]" (several seeds) or "−19 points [−34, −5]" (one): a difference of shares.</summary>
    static string Points(Estimate d) =>
        (d.Method == Estimate.SeedsMethod ? "seed by seed " : "") + $"{SignedPoints(d.Value)} points [{SignedPoints(d.Lower)}, {SignedPoints(d.Upper)}]";

    static string SignedPoints(double v) => (v * 100).ToString("+0;−0;0", CultureInfo.InvariantCulture);

    static string Rate(Estimate e) => double.IsNaN(e.Value) ? "n/a" :
        e.HasInterval ? $"{Percent(e.Value)} [{Percent(e.Lower)}, {Percent(e.Upper)}]" : Percent(e.Value);

    static string Percent(double v) => (v * 100).ToString("F0", CultureInfo.InvariantCulture) + "%";

    static string Number(double v, string format) => v.ToString(format, CultureInfo.InvariantCulture);

    static string SignedNumber(double v) => v.ToString("+0;−0;0", CultureInfo.InvariantCulture);
}
