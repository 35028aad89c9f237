using System.Globalization;
using System.Text;
using Excise.Experiment;
using Excise.Serialization;

namespace Excise.Reporting;

/// <summary>
/// report.html: one self-contained page (inline CSS, images as data URIs, no scripts) that opens offline and tells
/// what was run, what it measured and how to read it. Figures come from <see cref="ResultsTable"/>, so they match
/// results.md and results.json.
/// </summary>
public static partial class HtmlReport
{
    /// <summary>Steps the loss curves are averaged over: per-step diffusion losses are too noisy to read raw.</summary>
    const int LossSmoothingSteps = 25;

    /// <summary>Writes report.html into <paramref name="outputDirectory"/> atomically (after <see cref="WritePlots"/>, to include the plots).</summary>
    public static void Write(ExperimentResults results, string outputDirectory) =>
        AtomicFile.WriteAllText(ReportFiles.Resolve(outputDirectory, ReportFiles.Html), Render(results, outputDirectory));

    /// <param name="outputDirectory">Where the plots and sample grids are read from (see <see cref="ReportFiles"/>).</param>
    public static string Render(ExperimentResults results, string outputDirectory)
    {
        var page = new StringBuilder();
        page.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\" />\n")
            .Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\" />\n")
            .Append("<title>").Append(Html.Escape($"{ReportText.Title}: {results.Setup.Concept.Phrase}")).Append("</title>\n")
            .Append("<style>").Append(Style).Append("</style>\n</head>\n<body>\n<main>\n");
        AppendIntroduction(page, results);
        AppendSetup(page, results);
        AppendResults(page, results);
        AppendReading(page, results);
        AppendPlots(page, results, outputDirectory);
        AppendCertificates(page, results);
        AppendGrids(page, results, outputDirectory);
        AppendRuns(page, results, outputDirectory);
        page.Append("</main>\n</body>\n</html>\n");
        return page.ToString();
    }

    /// <summary>
    /// plots/extraction.png (extraction rate per arm and attack, with intervals) and plots/loss.png (each arm's
    /// seed-0 loss curve).
    /// </summary>
    public static void WritePlots(ExperimentResults results, string outputDirectory)
    {
        var attacks = results.Setup.Attacks.Names;
        Charts.GroupedBarChart($"Extraction of the {results.Setup.ConceptNoun} by arm and attack (95% intervals)",
            results.Summary.Select(a => a.Arm).ToList(),
            attacks.Select(a => ResultsTable.ExtractionHeader(a, results.Setup.ConceptNoun)).ToList(),
            (arm, attack) => results.Summary[arm].Extraction.GetValueOrDefault(attacks[attack]),
            $"share of images with the {results.Setup.ConceptNoun}", yMax: 1,
            ReportFiles.Resolve(outputDirectory, ReportFiles.ExtractionPlot));

        var curves = LossCurveRuns(results).Where(run => run.Losses.Count > 0).Select(run => (run.Arm, run.Losses)).ToList();
        Charts.LineChart("Fine-tuning loss (first seed of each arm)", curves, "step", "training loss",
            ReportFiles.Resolve(outputDirectory, ReportFiles.LossPlot), smoothWindow: LossSmoothingSteps);

        var inversion = InversionCurveRuns(results).Select(run => (ResultsTable.ArmLabel(run.Arm, results.Setup.ConceptNoun), run.InversionLosses!)).ToList();
        if (inversion.Count > 0)
            Charts.LineChart("Textual inversion: the adversary's loss (first seed of each arm)", inversion, "inversion step", "denoising loss",
                ReportFiles.Resolve(outputDirectory, ReportFiles.InversionLossPlot), smoothWindow: InversionSmoothingSteps);
    }

    /// <summary>Inversion's batches are small (8 images), so its per-step loss needs the same smoothing to show a trend.</summary>
    const int InversionSmoothingSteps = 10;

    /// <summary>The run whose loss curve stands for each arm: its first seed, in the summary's arm order.</summary>
    static IEnumerable<ArmSeedOutcome> LossCurveRuns(ExperimentResults results) =>
        results.Summary
            .Select(arm => results.Runs.Where(r => r.Arm == arm.Arm).OrderBy(r => r.SeedIndex).FirstOrDefault())
            .OfType<ArmSeedOutcome>();

    /// <summary>Each arm's first seed that recorded its inversion losses (the floor included: its curve is the one with nothing to find).</summary>
    static IEnumerable<ArmSeedOutcome> InversionCurveRuns(ExperimentResults results) =>
        LossCurveRuns(results).Where(run => run.InversionLosses is { Count: > 0 });

    static void AppendIntroduction(StringBuilder page, ExperimentResults results)
    {
        page.Append("<h1>").Append(Html.Escape(ReportText.Title)).Append("</h1>\n");
        page.Append("<p class=\"question\">").Append(Html.Escape(ReportText.Question(results.Setup))).Append("</p>\n");
        page.Append("<p class=\"meta\">").Append(Html.Escape(ReportText.SetupSummary(results))).Append("</p>\n");
        if (!results.Setup.Judges.QualityMeaningful)
            page.Append("<p class=\"warning\" role=\"alert\">").Append(Html.Escape(ReportText.QuickPresetWarning)).Append("</p>\n");
        page.Append("<nav><a href=\"#setup\">Setup</a> · <a href=\"#figures\">Results</a> · <a href=\"#reading\">Reading</a> · ")
            .Append("<a href=\"#plots\">Plots</a> · <a href=\"#certificates\">Certificates</a> · <a href=\"#grids\">Samples</a> · ")
            .Append("<a href=\"#runs\">Runs</a></nav>\n");
    }

    static void AppendResults(StringBuilder page, ExperimentResults results)
    {
        var columns = ResultsTable.Columns(results.Setup.Attacks.Names, results.Setup.ConceptNoun);
        page.Append("<section id=\"figures\">\n<h2>Results</h2>\n<div class=\"scroll\">\n<table id=\"results\">\n<thead>\n<tr><th scope=\"col\">arm</th>");
        foreach (var column in columns)
            page.Append("<th scope=\"col\"").Append(Html.Attribute("title", column.Description)).Append('>')
                .Append(Html.Escape(column.Header)).Append("</th>");
        page.Append("</tr>\n</thead>\n<tbody>\n");
        foreach (var arm in results.Summary)
        {
            page.Append("<tr").Append(Html.Attribute("data-arm", arm.Arm)).Append("><th scope=\"row\">")
                .Append(Html.Escape(ResultsTable.ArmLabel(arm.Arm, results.Setup.ConceptNoun))).Append("</th>");
            foreach (var column in columns)
                page.Append("<td").Append(Html.Attribute("data-value", ReportText.RoundTrip(column.Value(arm)?.Value)))
                    .Append(Html.Attribute("title", column.Header)).Append('>')
                    .Append(Html.Escape(column.Cell(arm))).Append("</td>");
            page.Append("</tr>\n");
        }
        page.Append("</tbody>\n</table>\n</div>\n");
        page.Append("<p class=\"note\">").Append(Html.Escape(ReportText.IntervalNote)).Append("</p>\n<dl class=\"legend\">\n");
        foreach (var column in columns)
            page.Append("<dt>").Append(Html.Escape(column.Header)).Append("</dt><dd>").Append(Html.Escape(column.Description)).Append("</dd>\n");
        page.Append("</dl>\n");
        AppendDifferences(page, results);
        page.Append("</section>\n");
    }

    /// <summary>Each defence minus standard, with the intervals the reading's verdicts use.</summary>
    static void AppendDifferences(StringBuilder page, ExperimentResults results)
    {
        if (!ArmComparison.StandardRan(results)) return;
        var columns = ResultsTable.DifferenceColumns(results.Setup.Attacks.Names, results.Setup.ConceptNoun);
        page.Append("<h3>Each defence against standard</h3>\n<div class=\"scroll\">\n<table id=\"differences\">\n<thead>\n<tr><th scope=\"col\">arm − standard</th>");
        foreach (var column in columns) page.Append("<th scope=\"col\">").Append(Html.Escape(column.Header)).Append("</th>");
        page.Append("</tr>\n</thead>\n<tbody>\n");
        foreach (var arm in ArmComparison.Defences(results))
        {
            page.Append("<tr").Append(Html.Attribute("data-arm", arm.Arm)).Append("><th scope=\"row\">").Append(Html.Escape(arm.Arm)).Append("</th>");
            foreach (var column in columns)
            {
                var d = column.Value(results, arm.Arm);
                page.Append("<td").Append(Html.Attribute("data-value", ReportText.RoundTrip(d?.Value))).Append('>')
                    .Append(Html.Escape(ResultsTable.DifferenceCell(d, column.Decimals))).Append("</td>");
            }
            page.Append("</tr>\n");
        }
        page.Append("</tbody>\n</table>\n</div>\n<p class=\"note\">").Append(Html.Escape(ReportText.DifferenceNote(results.Setup.Execution.Seeds))).Append("</p>\n");
    }

    static void AppendReading(StringBuilder page, ExperimentResults results)
    {
        page.Append("<section id=\"reading\">\n<h2>Reading</h2>\n");
        if (results.Reading.Count == 0) page.Append("<p>No reading was generated.</p>\n");
        else
        {
            page.Append("<ul class=\"reading\">\n");
            foreach (var sentence in results.Reading) page.Append("<li>").Append(Html.Escape(sentence)).Append("</li>\n");
            page.Append("</ul>\n");
        }
        page.Append("</section>\n");
    }

    static void AppendPlots(StringBuilder page, ExperimentResults results, string outputDirectory)
    {
        page.Append("<section id=\"plots\">\n<h2>Plots</h2>\n");
        var extractionLegend = results.Setup.Attacks.Names.Select(a => ResultsTable.ExtractionHeader(a, results.Setup.ConceptNoun)).ToList();
        bool any = AppendPlot(page, outputDirectory, ReportFiles.ExtractionPlot,
            $"Share of images carrying the {results.Setup.ConceptNoun}, per arm (groups) and attack (colours); whiskers are 95% intervals.", extractionLegend);
        any |= AppendPlot(page, outputDirectory, ReportFiles.LossPlot,
            $"Training loss of each arm's first seed, averaged over {LossSmoothingSteps} steps.",
            LossCurveRuns(results).Where(r => r.Losses.Count > 0).Select(r => r.Arm).ToList());
        any |= AppendPlot(page, outputDirectory, ReportFiles.InversionLossPlot,
            $"The inversion adversary's denoising loss on its held-out {results.Setup.ConceptNoun} images, step by step (first seed, averaged over {InversionSmoothingSteps} steps): " +
            "a curve that has flattened is an adversary that has converged at this budget.",
            InversionCurveRuns(results).Select(r => ResultsTable.ArmLabel(r.Arm, results.Setup.ConceptNoun)).ToList());
        if (!any) page.Append("<p>No plots were found in plots/.</p>\n");
        page.Append("</section>\n");
    }

    /// <summary>The plot with a colour key in HTML, which stays readable even when the chart's own text could not be drawn.</summary>
    static bool AppendPlot(StringBuilder page, string outputDirectory, string relativePath, string caption, IReadOnlyList<string> legend)
    {
        if (Html.EmbeddedPng(outputDirectory, relativePath, caption) is not { } image) return false;
        page.Append("<figure class=\"plot\">").Append(image).Append("<figcaption>").Append(Html.Escape(caption)).Append("<br />");
        for (int i = 0; i < legend.Count; i++)
            page.Append("<span class=\"key\"><span class=\"swatch\"").Append(Html.Attribute("style", $"background:{ChartPalette.Css(i)}"))
                .Append("></span>").Append(Html.Escape(legend[i])).Append("</span> ");
        page.Append("</figcaption></figure>\n");
        return true;
    }

    static string Seed(ArmSeedOutcome run) =>
        $"{run.SeedIndex.ToString(CultureInfo.InvariantCulture)} ({run.Seed.ToString(CultureInfo.InvariantCulture)})";

    const string Style = """

        body { margin: 0; background: #fafafa; color: #1a1a1a; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; }
        main { max-width: 1180px; margin: 0 auto; padding: 1.5rem 2rem 4rem; background: #fff; }
        h1 { margin-bottom: 0.2rem; }
        h2 { margin-top: 2.5rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
        .question { font-size: 1.15rem; }
        .meta, .note, figcaption { color: #555; }
        .warning { background: #fff4e5; border: 1px solid #e69f00; border-left: 6px solid #d55e00; padding: 0.7rem 1rem; font-weight: 600; }
        nav a { color: #0072b2; }
        .scroll { overflow-x: auto; }
        table { border-collapse: collapse; margin: 0.5rem 0; font-variant-numeric: tabular-nums; }
        th, td { border: 1px solid #ddd; padding: 0.3rem 0.55rem; text-align: right; vertical-align: top; }
        th[scope=row], td.text, thead th { text-align: left; }
        thead th { background: #f0f0f0; }
        thead th[title] { cursor: help; }
        tbody tr:nth-child(even) { background: #f8f8f8; }
        dl.setup { display: grid; grid-template-columns: max-content 1fr; gap: 0.25rem 1.2rem; }
        dl.setup dt { font-weight: 600; }
        dl.setup dd { margin: 0; }
        dl.legend dt { font-weight: 600; margin-top: 0.3rem; }
        dl.legend dd { margin-left: 1.5rem; color: #444; }
        code { background: #f3f3f3; padding: 0.1rem 0.3rem; border-radius: 3px; word-break: break-all; }
        figure { margin: 1rem 0; }
        figure img { max-width: 100%; height: auto; border: 1px solid #eee; image-rendering: pixelated; }
        figure.plot img { image-rendering: auto; }
        .grids { display: flex; flex-wrap: wrap; gap: 1rem; }
        .grids figure { margin: 0; max-width: 380px; }
        .key { white-space: nowrap; margin-right: 0.8rem; }
        .swatch { display: inline-block; width: 0.9em; height: 0.9em; margin-right: 0.3em; vertical-align: -0.1em; }

        """;
}
