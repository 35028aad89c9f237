using System.Globalization;
using System.Text;
using Excise.Experiment;
using Excise.Serialization;

namespace Excise.Reporting;

/// <summary>
/// The stamped-share sweep written up: sweep.md (one table per figure, arms × shares) and two charts, the logo when
/// named and when unasked against the share of stamped fine-tuning images. Each share's own report is in its folder.
/// </summary>
public static class ShareSweepReport
{
    public const string Markdown = "sweep.md", NamedPlot = "plots/share-sweep-named.png", UnaskedPlot = "plots/share-sweep-unasked.png";

    public static void Write(ShareSweepResults sweep, string outputDirectory)
    {
        AtomicFile.WriteAllText(ReportFiles.Resolve(outputDirectory, Markdown), MarkdownText(sweep));
        var shares = sweep.Shares.Select(ShareLabel).ToList();
        var arms = sweep.Arms.Append(ArmNames.Floor).Where(a => sweep.Rows.Any(r => r.Arm == a)).ToList();
        foreach (var (figure, title, path) in new (Func<ShareSweepRow, Estimate?>, string, string)[]
                 {
                     (r => r.Named, "Logo when the prompt names it, by share of stamped fine-tuning images", NamedPlot),
                     (r => r.Unasked, "Logo when the prompt does not ask for it, by share of stamped fine-tuning images", UnaskedPlot),
                 })
        {
            var file = ReportFiles.Resolve(outputDirectory, path);
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            Charts.GroupedBarChart(title, shares, arms.Select(a => ResultsTable.ArmLabel(a)).ToList(),
                (g, s) => Find(sweep, arms[s], sweep.Shares[g]) is { } row ? figure(row) : null, "share of images", 1, file);
        }
    }

    public static string MarkdownText(ShareSweepResults sweep)
    {
        var text = new StringBuilder("# Stamped-share sweep\n\n");
        text.Append(CultureInfo.InvariantCulture, $"The same experiment with {string.Join(", ", sweep.Shares.Select(ShareLabel))} of the fine-tuning images stamped; ")
            .Append(sweep.Seeds == 1 ? "one seed (provisional)" : $"{sweep.Seeds} seeds").Append(". Each share's full report: ")
            .Append(string.Join(", ", sweep.Folders.Select(f => $"`{f}/`"))).Append(".\n\n")
            .Append("![The logo when named, by share](").Append(NamedPlot).Append(")\n")
            .Append("![The logo unasked, by share](").Append(UnaskedPlot).Append(")\n\n");
        foreach (var (title, figure, decimals) in new (string, Func<ShareSweepRow, Estimate?>, int)[]
                 {
                     ("Logo when named", r => r.Named, 3), ("Logo unasked", r => r.Unasked, 3), ("Lift (named − unasked)", r => r.Lift, 3),
                     ("Inversion gain (T − T₀)", r => r.InversionGain, 3), ("Semantic fidelity", r => r.Fidelity, 3), ("FD (in-domain)", r => r.Fd, 1),
                 })
        {
            text.Append("## ").Append(title).Append("\n\n| arm | ").Append(string.Join(" | ", sweep.Shares.Select(ShareLabel))).Append(" |\n|---|")
                .Append(string.Concat(sweep.Shares.Select(_ => "---|"))).Append('\n');
            foreach (var arm in sweep.Arms.Append(ArmNames.Floor).Where(a => sweep.Rows.Any(r => r.Arm == a)))
                text.Append("| ").Append(ResultsTable.ArmLabel(arm)).Append(" | ")
                    .Append(string.Join(" | ", sweep.Shares.Select(s => Find(sweep, arm, s) is { } row && figure(row) is { } e ? e.Format(decimals, 1) : "–"))).Append(" |\n");
            text.Append('\n');
        }
        text.Append(ReportText.IntervalNote).Append('\n');
        return text.ToString();
    }

    static ShareSweepRow? Find(ShareSweepResults sweep, string arm, double share) => sweep.Rows.FirstOrDefault(r => r.Arm == arm && r.Share == share);

    static string ShareLabel(double share) => (share * 100).ToString("0.#", CultureInfo.InvariantCulture) + "%";
}
