namespace Excise.Reporting;

/// <summary>Where the experiment's report files live, relative to its output directory (the report embeds what it finds there).</summary>
public static class ReportFiles
{
    public const string Html = "report.html";
    public const string Markdown = "results.md";
    public const string ExtractionPlot = "plots/extraction.png";
    public const string LossPlot = "plots/loss.png";
    public const string InversionLossPlot = "plots/inversion-loss.png";

    /// <summary>The sample grid of one arm under one attack: "grids/{arm}-{attack}.png".</summary>
    public static string Grid(string arm, string attack) => $"grids/{arm}-{attack}.png";

    /// <summary>That grid as a path on this machine.</summary>
    public static string GridPath(string outputDirectory, string arm, string attack) => Resolve(outputDirectory, Grid(arm, attack));

    /// <summary>A relative report path ("plots/loss.png") as a path on this machine.</summary>
    public static string Resolve(string outputDirectory, string relativePath) =>
        Path.Combine(outputDirectory, relativePath.Replace('/', Path.DirectorySeparatorChar));
}
