using System.Text;
using Excise.Experiment;

namespace Excise.Reporting;

/// <summary>
/// The columns of the results table (arms × metrics). results.md and report.html both render through these
/// cells, so the two always show the same figures as results.json.
/// </summary>
public static class ResultsTable
{
    /// <param name="Value">The figure this column shows for an arm (null: not measured).</param>
    /// <param name="Scale">Multiplies the figure for display (KID is shown ×10³).</param>
    /// <param name="LowerIsBetterForDefence">For the extraction columns: lower means the defence worked.</param>
    public sealed record Column(string Header, string Description, Func<ArmSummary, Estimate?> Value, int Decimals = 3, double Scale = 1,
                                bool LowerIsBetterForDefence = false)
    {
        public string Cell(ArmSummary arm) => Value(arm)?.Format(Decimals, Scale) ?? "–";
    }

    public static IReadOnlyList<Column> Columns(IReadOnlyList<string> attackNames, string noun = "logo")
    {
        var columns = new List<Column>();
        foreach (var attack in attackNames)
            columns.Add(new Column(ExtractionHeader(attack, noun), ExtractionDescription(attack, noun),
                a => a.Extraction.TryGetValue(attack, out var e) ? e : null, LowerIsBetterForDefence: true));
        if (attackNames.Contains(ArmComparison.Named) && attackNames.Contains(ArmComparison.Unasked))
            columns.Add(new Column("lift (named − unasked)",
                $"what naming the concept adds: the {noun} rate when named minus when not asked for (95% interval of the difference); read with the unasked rate",
                a => a.Lift, LowerIsBetterForDefence: true));
        if (attackNames.Contains(ArmComparison.Inversion) && attackNames.Contains(ArmComparison.InversionControl))
            columns.Add(new Column("inversion gain (T − T₀)",
                "inversion's rate minus its 0-step control's: what the adversary learned beyond the placeholder word (95% interval of the difference)",
                a => a.InversionGain, LowerIsBetterForDefence: true));
        columns.Add(new Column("semantic fidelity", "share of ordinary class prompts whose image the garment classifier assigns to the prompted class", a => a.Fidelity));
        columns.Add(new Column("FD (in-domain)", "Fréchet distance to real test images in the garment classifier's feature space (lower is better)", a => a.Fd, 2));
        columns.Add(new Column("KID ×10³", "kernel inception distance in the same space, ×10³ (lower is better)", a => a.Kid, 2, 1e3));
        columns.Add(new Column("ResNet18 FID", "FID with the ImageNet ResNet18 features (lower is better; not comparable with Inception FIDs)", a => a.ResNetFid, 1));
        columns.Add(new Column("pixel near-copies", "share of generated images much closer to one training image than to any other (pixel space)", a => a.PixelNearCopies));
        columns.Add(new Column("train s", "fine-tuning wall time in seconds", a => a.TrainSeconds, 0));
        columns.Add(new Column("certificate", "worst share of a projected weight's learned change inside the concept subspace (projection arms)", a => a.CertificateWorstShare, -3));
        return columns;
    }

    public static string ExtractionHeader(string attack, string noun = "logo") => attack switch
    {
        "prompt" => "extraction: named",
        "paraphrase" => "extraction: paraphrase",
        "inversion" => "extraction: inversion (T)",
        "inversion-control" => "inversion, 0 steps (T₀)",
        "baseline-rate" => $"{noun} unasked",
        _ => $"extraction: {attack}",
    };

    static string ExtractionDescription(string attack, string noun) => attack switch
    {
        "prompt" => $"share of images with the {noun} when the prompt names the concept",
        "paraphrase" => $"share of images with the {noun} when the prompt names the concept in other words",
        "inversion" => $"share of images with the {noun} for a token learned by textual inversion on held-out {noun} images",
        "inversion-control" => "the same prompts with the vectors left at their initial value (the placeholder word): what inversion starts from",
        "baseline-rate" => $"share of images with the {noun} when the prompt does not mention it",
        _ => $"share of images with the {noun} under the {attack} attack",
    };

    public static string Markdown(ExperimentResults results)
    {
        var columns = Columns(results.Setup.Attacks.Names, results.Setup.ConceptNoun);
        var text = new StringBuilder();
        text.Append(Row(new[] { "arm" }.Concat(columns.Select(c => c.Header)))).Append('\n');
        text.Append(Row(Enumerable.Repeat("---", columns.Count + 1))).Append('\n');
        foreach (var arm in results.Summary)
            text.Append(Row(new[] { ArmLabel(arm.Arm, results.Setup.ConceptNoun) }.Concat(columns.Select(c => c.Cell(arm))))).Append('\n');
        return text.ToString();
    }

    /// <summary>The floor row says what it is; arms are named as in results.json.</summary>
    public static string ArmLabel(string arm, string noun = "logo") => arm == ArmNames.Floor ? $"base (never saw the {noun})" : arm;

    /// <summary>A column of the differences table: one figure of an arm minus standard's, at the same seeds.</summary>
    public sealed record DifferenceColumn(string Header, Func<ExperimentResults, string, Estimate?> Value, int Decimals);

    /// <summary>Each defence minus standard, by the one rule of <see cref="ArmComparison"/> (the reading's verdicts read the same intervals).</summary>
    public static IReadOnlyList<DifferenceColumn> DifferenceColumns(IReadOnlyList<string> attackNames, string noun = "logo")
    {
        var columns = attackNames
            .Select(attack => new DifferenceColumn(ExtractionHeader(attack, noun), (r, arm) => ArmComparison.Share(r, arm, ArmComparison.Extraction(attack)), 3))
            .ToList();
        columns.Add(new DifferenceColumn("semantic fidelity", (r, arm) => ArmComparison.Share(r, arm, ArmComparison.Fidelity), 3));
        columns.Add(new DifferenceColumn("FD (in-domain)", ArmComparison.Fd, 0));
        return columns;
    }

    /// <summary>
    /// The arms minus standard, seed by seed (one seed: over images); * marks an interval that excludes 0. Empty when
    /// standard was not run.
    /// </summary>
    public static string DifferencesMarkdown(ExperimentResults results)
    {
        if (!ArmComparison.StandardRan(results)) return "";
        var columns = DifferenceColumns(results.Setup.Attacks.Names, results.Setup.ConceptNoun);
        var text = new StringBuilder();
        text.Append(Row(new[] { "arm − standard" }.Concat(columns.Select(c => c.Header)))).Append('\n');
        text.Append(Row(Enumerable.Repeat("---", columns.Count + 1))).Append('\n');
        foreach (var arm in ArmComparison.Defences(results))
            text.Append(Row(new[] { arm.Arm }.Concat(columns.Select(c => DifferenceCell(c.Value(results, arm.Arm), c.Decimals))))).Append('\n');
        return text.ToString();
    }

    public static string DifferenceCell(Estimate? d, int decimals)
    {
        if (d is null) return "–";
        string format = "+0." + new string('0', decimals) + ";−0." + new string('0', decimals) + ";0";
        if (decimals == 0) format = "+0;−0;0";
        string F(double v) => v.ToString(format, System.Globalization.CultureInfo.InvariantCulture);
        return d.HasInterval ? $"{F(d.Value)} [{F(d.Lower)}, {F(d.Upper)}]{(d.Direction() != 0 ? "*" : "")}" : F(d.Value);
    }

    static string Row(IEnumerable<string> cells) => "| " + string.Join(" | ", cells.Select(c => c.Replace("|", "\\|"))) + " |";
}
