using Excise.Experiment;
using Excise.Imaging;

namespace Excise.Reporting;

/// <summary>
/// What a reader of an experiment opens besides results.json: a sample grid per arm and attack, results.md, the plots
/// and report.html. <c>excise demo</c> hands <see cref="Write"/> to <see cref="ExperimentRunner.Run"/>, which calls it
/// under the experiment's lock once results.json is written.
/// </summary>
public static class ExperimentReport
{
    public static void Write(ExperimentResults results, string outputDirectory)
    {
        // The grids first: report.html embeds the ones it finds.
        foreach (var outcome in results.Runs.Where(o => o.SeedIndex == 0))
            foreach (var attack in results.Setup.Attacks.Names)
                WriteGrid(outputDirectory, outcome, attack);
        MarkdownReport.Write(results, outputDirectory);
        HtmlReport.WritePlots(results, outputDirectory);
        HtmlReport.Write(results, outputDirectory);
    }

    /// <summary>One row per class (the first prompt template's ten prompts), every image of those prompts.</summary>
    static void WriteGrid(string outputDirectory, ArmSeedOutcome outcome, string attack)
    {
        var gridsDir = Path.Combine(outputDirectory, outcome.EvalDirectory, "attacks", attack, "grids");
        if (!Directory.Exists(gridsDir)) return;
        var rows = Directory.GetFiles(gridsDir, "p*.png").Order(StringComparer.Ordinal).Take(10).Select(f => PngIO.Load(f)).ToList();
        if (rows.Count == 0) return;
        var path = ReportFiles.GridPath(outputDirectory, outcome.Arm, attack);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        PngIO.Save(ImageGrid.Compose(rows, 1, padding: 0), path);
    }
}
