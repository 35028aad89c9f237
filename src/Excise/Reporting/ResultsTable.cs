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

    public static IReadOnlyList<Column> Columns(IReadOnlyList<string> attackNames)
    {
        var columns = new List<Column>();
        foreach (var attack in attackNames)
            columns.Add(new Column(ExtractionHeader(attack), ExtractionDescription(attack),
                a => a.Extraction.TryGetValue(attack, out var e) ? e : null, LowerIsBetterForDefence: true));
        columns.Add(new Column("semantic fidelity", "share of ordinary class prompts whose image the garment classifier assigns to the prompted class", a => a.Fidelity));
        columns.Add(new Column("FD (in-domain)", "Fréchet distance to real test images in the garment classifier's feature space (lower is better)", a => a.Fd, 2));
        columns.Add(new Column("KID ×10³", "kernel inception distance in the same space, ×10³ (lower is better)", a => a.Kid, 2, 1e3));
        columns.Add(new Column("ResNet18 FID", "FID with the ImageNet ResNet18 features (lower is better; not comparable with Inception FIDs)", a => a.ResNetFid, 1));
        columns.Add(new Column("pixel near-copies", "share of generated images much closer to one training image than to any other (pixel space)", a => a.PixelNearCopies));
        columns.Add(new Column("train s", "fine-tuning wall time in seconds", a => a.TrainSeconds, 0));
        columns.Add(new Column("certificate", "worst share of a projected weight's learned change inside the concept subspace (projection arms)", a => a.CertificateWorstShare, -3));
        return columns;
    }

    public static string ExtractionHeader(string attack) => attack switch
    {
        "prompt" => "extraction: named",
        "paraphrase" => "extraction: paraphrase",
        "inversion" => "extraction: inversion",
        "baseline-rate" => "logo unasked",
        _ => $"extraction: {attack}",
    };

    static string ExtractionDescription(string attack) => attack switch
    {
        "prompt" => "share of images with the logo when the prompt names the concept",
        "paraphrase" => "share of images with the logo when the prompt names the concept in other words",
        "inversion" => "share of images with the logo for a token learned by textual inversion on held-out logo images",
        "baseline-rate" => "share of images with the logo when the prompt does not mention it",
        _ => $"share of images with the logo under the {attack} attack",
    };

    public static string Markdown(ExperimentResults results)
    {
        var columns = Columns(results.Setup.AttackNames);
        var text = new StringBuilder();
        text.Append(Row(new[] { "arm" }.Concat(columns.Select(c => c.Header)))).Append('\n');
        text.Append(Row(Enumerable.Repeat("---", columns.Count + 1))).Append('\n');
        foreach (var arm in results.Summary)
            text.Append(Row(new[] { arm.Arm }.Concat(columns.Select(c => c.Cell(arm))))).Append('\n');
        return text.ToString();
    }

    static string Row(IEnumerable<string> cells) => "| " + string.Join(" | ", cells.Select(c => c.Replace("|", "\\|"))) + " |";
}
