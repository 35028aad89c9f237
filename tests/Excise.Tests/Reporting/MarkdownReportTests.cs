using Excise.Reporting;

namespace Excise.Tests.Reporting;

public class MarkdownReportTests
{
    [Fact]
    public void Results_markdown_names_every_arm_and_column_and_gives_the_reading()
    {
        var results = SyntheticResults.Build();
        string markdown = MarkdownReport.ResultsMarkdown(results);

        foreach (var arm in SyntheticResults.Arms) Assert.Contains($"| {arm} |", markdown);
        foreach (var column in ResultsTable.Columns(results.Setup.Attacks.Names)) Assert.Contains(column.Header, markdown);
        foreach (var sentence in results.Reading) Assert.Contains($"- {sentence}", markdown);
        Assert.Contains("Quick preset", markdown);
        Assert.Contains(ResultsTable.Markdown(results), markdown);
    }

    [Fact]
    public void Write_puts_results_md_in_the_output_directory()
    {
        using var dir = new TempDir();
        var results = SyntheticResults.Build(qualityMeaningful: true);
        MarkdownReport.Write(results, dir.Path);

        string written = File.ReadAllText(dir.File(ReportFiles.Markdown));
        Assert.Equal(MarkdownReport.ResultsMarkdown(results), written);
        Assert.DoesNotContain("Quick preset", written);
    }
}
