using System.Text;
using Excise.Experiment;
using Excise.Serialization;

namespace Excise.Reporting;

/// <summary>results.md: the results table with the setup line and the plain-language reading, for a terminal or a README.</summary>
public static class MarkdownReport
{
    public static string ResultsMarkdown(ExperimentResults results)
    {
        var text = new StringBuilder();
        text.Append("# ").Append(ReportText.Title).Append("\n\n");
        text.Append(ReportText.Question(results.Setup)).Append("\n\n");
        text.Append(ReportText.SetupSummary(results)).Append("\n\n");
        if (!results.Setup.Judges.QualityMeaningful) text.Append("> **").Append(ReportText.QuickPresetWarning).Append("**\n\n");
        text.Append(ResultsTable.Markdown(results)).Append('\n');
        text.Append(ReportText.IntervalNote).Append("\n\n");
        if (results.Setup.Judges.DetectorMasks is { } masks) text.Append("Detector masks: ").Append(ReportText.DetectorMasksSentence(masks)).Append("\n\n");
        var differences = ResultsTable.DifferencesMarkdown(results);
        if (differences.Length > 0)
            text.Append("## Each defence against standard\n\n").Append(differences).Append('\n').Append(ReportText.DifferenceNote(results.Setup.Execution.Seeds)).Append("\n\n");
        text.Append("## Reading\n\n");
        foreach (var sentence in results.Reading) text.Append("- ").Append(sentence).Append('\n');
        if (results.Reading.Count == 0) text.Append("(no reading was generated)\n");
        return text.ToString();
    }

    /// <summary>Writes results.md into <paramref name="outputDirectory"/> atomically.</summary>
    public static void Write(ExperimentResults results, string outputDirectory) =>
        AtomicFile.WriteAllText(ReportFiles.Resolve(outputDirectory, ReportFiles.Markdown), ResultsMarkdown(results));
}
