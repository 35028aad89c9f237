using System.Globalization;
using System.Xml.Linq;
using Excise.Data;
using Excise.Experiment;
using Excise.Imaging;
using Excise.Reporting;

namespace Excise.Tests.Reporting;

public class HtmlReportTests
{
    /// <summary>An experiment's output directory: results.json, the plots, one real sample grid and report.html.</summary>
    sealed class WrittenReport : IDisposable
    {
        public TempDir Dir { get; } = new();
        public ExperimentResults Results { get; }
        public byte[] GridPng { get; }
        public string Html { get; }

        public WrittenReport(bool qualityMeaningful = false)
        {
            var original = SyntheticResults.Build(qualityMeaningful);
            File.WriteAllText(Dir.File("results.json"), original.ToJson());
            // The report is rendered from what results.json gives back, as `excise report` would.
            Results = ExperimentResults.FromJson(File.ReadAllText(Dir.File("results.json")));

            var grid = ImageGrid.Compose(Enumerable.Range(0, 4).Select(i => RasterImage.Blank(8, 8, 1, (byte)(60 * i))).ToList(), columns: 2);
            PngIO.Save(grid, ReportFiles.Resolve(Dir.Path, ReportFiles.Grid("standard", "prompt")));
            GridPng = File.ReadAllBytes(ReportFiles.Resolve(Dir.Path, ReportFiles.Grid("standard", "prompt")));
            Directory.CreateDirectory(Dir.File("runs/test/standard-0/eval"));

            HtmlReport.WritePlots(Results, Dir.Path);
            HtmlReport.Write(Results, Dir.Path);
            Html = File.ReadAllText(Dir.File(ReportFiles.Html));
        }

        public XElement Table(string id) =>
            XDocument.Parse(Html).Descendants("table").Single(t => (string?)t.Attribute("id") == id);

        public void Dispose() => Dir.Dispose();
    }

    [Fact]
    public void Report_is_self_contained()
    {
        using var report = new WrittenReport();
        Assert.True(File.Exists(report.Dir.File("report.html")));
        foreach (var external in new[] { "src=\"http", "href=\"http", "src=\"//", "href=\"//", "<script", "<link", "url(", "@import" })
            Assert.DoesNotContain(external, report.Html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("src=\"grids/", report.Html);
        Assert.DoesNotContain("src=\"plots/", report.Html);
    }

    [Fact]
    public void Sample_grid_and_plots_are_embedded_as_data_uris()
    {
        using var report = new WrittenReport();
        Assert.Contains($"src=\"data:image/png;base64,{Convert.ToBase64String(report.GridPng)}\"", report.Html);
        foreach (var plot in new[] { ReportFiles.ExtractionPlot, ReportFiles.LossPlot })
        {
            var bytes = File.ReadAllBytes(ReportFiles.Resolve(report.Dir.Path, plot));
            Assert.True(PngIO.HasPngSignature(bytes), plot);
            Assert.Contains(Convert.ToBase64String(bytes), report.Html);
        }
        string figure = report.Results.Summary[0].Extraction["prompt"].Format();
        Assert.Contains($"standard · prompt: extraction: named {figure}", report.Html);
    }

    [Fact]
    public void Report_is_well_formed_with_one_results_row_per_arm()
    {
        using var report = new WrittenReport();
        var rows = report.Table("results").Element("tbody")!.Elements("tr").ToList();
        Assert.Equal(report.Results.Summary.Select(a => a.Arm), rows.Select(r => (string?)r.Attribute("data-arm")));
        var headers = report.Table("results").Element("thead")!.Descendants("th").Select(th => th.Value).ToList();
        Assert.Equal(new[] { "arm" }.Concat(ResultsTable.Columns(report.Results.Setup.Attacks.Names).Select(c => c.Header)), headers);
    }

    [Fact]
    public void Every_results_cell_shows_the_shared_column_text_and_the_json_figure()
    {
        using var report = new WrittenReport();
        var columns = ResultsTable.Columns(report.Results.Setup.Attacks.Names);
        var rows = report.Table("results").Element("tbody")!.Elements("tr").ToList();
        int nanCells = 0;
        for (int a = 0; a < rows.Count; a++)
        {
            var arm = report.Results.Summary[a];
            var cells = rows[a].Elements("td").ToList();
            Assert.Equal(columns.Count, cells.Count);
            for (int c = 0; c < columns.Count; c++)
            {
                Assert.Equal(columns[c].Cell(arm), cells[c].Value);
                string dataValue = (string)cells[c].Attribute("data-value")!;
                var expected = columns[c].Value(arm);
                if (expected is null) { Assert.Equal("", dataValue); continue; }
                double shown = double.Parse(dataValue, NumberStyles.Float, CultureInfo.InvariantCulture);
                if (double.IsNaN(expected.Value)) { Assert.True(double.IsNaN(shown)); nanCells++; }
                else Assert.Equal(expected.Value, shown); // exact: "R" round-trips every bit
            }
        }
        Assert.True(nanCells > 0, "The synthetic results carry NaN figures, which must survive the report.");
    }

    [Fact]
    public void Quick_preset_gets_the_warning_banner_and_full_runs_do_not()
    {
        using (var quick = new WrittenReport(qualityMeaningful: false))
            Assert.Contains("class=\"warning\"", quick.Html);
        using var full = new WrittenReport(qualityMeaningful: true);
        Assert.DoesNotContain("class=\"warning\"", full.Html);
    }

    [Fact]
    public void Reading_and_setup_text_are_escaped()
    {
        using var report = new WrittenReport();
        Assert.Contains("<li>A &lt;b&gt;tagged&lt;/b&gt; sentence &amp; an ampersand.</li>", report.Html);
        Assert.Contains("test &lt;host&gt;", report.Html);
        Assert.DoesNotContain("<b>tagged", report.Html);
    }

    [Fact]
    public void Certificates_list_every_projected_run_and_runs_list_every_run()
    {
        using var report = new WrittenReport();
        var certified = report.Results.Runs.Where(r => r.CertificateWorstShare is not null).ToList();
        var certificateRows = report.Table("certificates-table").Element("tbody")!.Elements("tr").ToList();
        Assert.Equal(certified.Count, certificateRows.Count);
        Assert.All(certificateRows, row => Assert.Equal("update-projection", row.Element("th")!.Value));
        Assert.Contains(certificateRows, row => row.Elements("td").Any(td => td.Value == "3.2E-09"));

        var runRows = report.Table("runs-table").Element("tbody")!.Elements("tr").ToList();
        Assert.Equal(report.Results.Runs.Count, runRows.Count);
        var links = runRows.Select(r => (string)r.Descendants("a").Single().Attribute("href")!).ToList();
        Assert.Equal(report.Results.Runs.Select(r => r.EvalDirectory), links);
        Assert.Contains("n/a (0 trials)", report.Html);
    }

    [Fact]
    public void Missing_plots_and_grids_are_reported_not_fatal()
    {
        using var dir = new TempDir();
        string html = HtmlReport.Render(SyntheticResults.Build(), dir.Path);
        Assert.Contains("No plots were found", html);
        Assert.Contains("No sample grids were found", html);
        XDocument.Parse(html);
    }
}
