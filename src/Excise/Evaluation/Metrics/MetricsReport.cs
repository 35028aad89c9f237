using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Excise.Serialization;

namespace Excise.Evaluation.Metrics;

/// <summary>
/// Every metric of one evaluated model, each carrying its own sample counts. Sections are optional so a report
/// can hold what was measured; to add a metric, add a property and, if it belongs in the summary table, a
/// column to <see cref="Columns"/>.
/// </summary>
/// <param name="Name">Identifies the evaluated model or run (a table row's label).</param>
/// <param name="GeneratedCount">Images generated for the evaluation.</param>
public sealed record MetricsReport(string Name, int GeneratedCount)
{
    /// <summary>Fréchet distance and KID in the in-domain (garment classifier) feature space.</summary>
    public DistributionMetrics? Distribution { get; init; }
    /// <summary>FID with the ImageNet-trained ResNet18 (not InceptionV3: not comparable with published FIDs).</summary>
    public DistributionMetrics? ResNetDistribution { get; init; }
    public ExtractionResult? Extraction { get; init; }
    public SemanticFidelityResult? Fidelity { get; init; }
    public MemorisationResult? PixelMemorisation { get; init; }
    public MemorisationResult? FeatureMemorisation { get; init; }
    /// <summary>Free-form settings worth keeping beside the numbers (seed, sampler steps, guidance, checkpoint).</summary>
    public IReadOnlyDictionary<string, string> Settings { get; init; } = new Dictionary<string, string>();

    public string ToJson() => JsonSerializer.Serialize(this, RecordJson.Options);

    public static MetricsReport FromJson(string json, string source = "metrics report") => RecordJson.Read<MetricsReport>(json, source, "a metrics report");

    /// <summary>One summary-table column: a header and how a report fills its cell ("–" when not measured).</summary>
    public sealed record Column(string Header, Func<MetricsReport, string?> Cell);

    public static IReadOnlyList<Column> Columns { get; } =
    [
        new("run", r => r.Name),
        new("generated", r => r.GeneratedCount.ToString(CultureInfo.InvariantCulture)),
        new("FD (ref/gen n)", r => r.Distribution is { } d
            ? $"{Number(d.Fid, 2)} ({d.ReferenceCount}/{d.GeneratedCount}{(d.FidIsRankDeficient ? ", biased: n ≤ dim" : "")})" : null),
        new("KID ×10³ ± std", r => r.Distribution?.Kid is { } k
            ? $"{Number(k.Mean * 1e3, 2)} ± {Number(k.Std * 1e3, 2)} ({k.SubsetCount}×{k.SubsetSize})" : null),
        new("ResNet18 FID (ref/gen n)", r => r.ResNetDistribution is { } d
            ? $"{Number(d.Fid, 2)} ({d.ReferenceCount}/{d.GeneratedCount}{(d.FidIsRankDeficient ? ", biased: n ≤ dim" : "")})" : null),
        new("extraction rate [95% CI]", r => r.Extraction?.Rate.Format()),
        new("semantic fidelity [95% CI]", r => r.Fidelity?.Overall.Format()),
        new("pixel copies", r => r.PixelMemorisation?.Copies.Format()),
        new("pixel near-copies", r => r.PixelMemorisation?.NearCopies.Format()),
        new("feature near-copies", r => r.FeatureMemorisation?.NearCopies.Format()),
        new("min pixel NN distance", r => r.PixelMemorisation is { } m ? Number(m.NearestDistance.Min, 3) : null),
    ];

    public static string MarkdownHeader() =>
        Row(Columns.Select(c => c.Header)) + "\n" + Row(Columns.Select(_ => "---"));

    public string ToMarkdownRow() => Row(Columns.Select(c => c.Cell(this) ?? "–"));

    /// <summary>Header, separator and one row per report.</summary>
    public static string MarkdownTable(IEnumerable<MetricsReport> reports)
    {
        var table = new StringBuilder(MarkdownHeader());
        foreach (var report in reports) table.Append('\n').Append(report.ToMarkdownRow());
        return table.ToString();
    }

    private static string Row(IEnumerable<string> cells) => "| " + string.Join(" | ", cells.Select(c => c.Replace("|", "\\|"))) + " |";

    private static string Number(double value, int decimals) => value.ToString("F" + decimals, CultureInfo.InvariantCulture);
}
