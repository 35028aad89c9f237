using System.Text;
using Excise.Experiment;
using static Excise.Reporting.ReportText;

namespace Excise.Reporting;

public static partial class HtmlReport
{
    static void AppendCertificates(StringBuilder page, ExperimentResults results)
    {
        page.Append("<section id=\"certificates\">\n<h2>Certificates</h2>\n")
            .Append("<p>For each projected run: the largest share of any projected weight's learned change that lies inside the ")
            .Append("concept subspace (ideally ~0), whether it stayed under the tolerance, and the share of training time the ")
            .Append("projection cost.</p>\n");
        var certified = results.Runs.Where(r => r.CertificateWorstShare is not null).ToList();
        if (certified.Count == 0)
        {
            page.Append("<p>No run carries a certificate (no projection arm was run).</p>\n</section>\n");
            return;
        }
        page.Append("<table id=\"certificates-table\">\n<thead><tr><th scope=\"col\">arm</th><th scope=\"col\">seed</th>")
            .Append("<th scope=\"col\">worst share</th><th scope=\"col\">passed</th><th scope=\"col\">projection share of training time</th></tr></thead>\n<tbody>\n");
        foreach (var run in certified)
            page.Append("<tr><th scope=\"row\">").Append(Html.Escape(run.Arm)).Append("</th>")
                .Append("<td>").Append(Html.Escape(Seed(run))).Append("</td>")
                .Append("<td>").Append(Html.Escape(Significant(run.CertificateWorstShare!.Value))).Append("</td>")
                .Append("<td>").Append(run.CertificatePassed switch { true => "yes", false => "<strong>no</strong>", null => "–" }).Append("</td>")
                .Append("<td>").Append(Html.Escape(Percent(run.ProjectionShare))).Append("</td></tr>\n");
        page.Append("</tbody>\n</table>\n</section>\n");
    }

    static void AppendGrids(StringBuilder page, ExperimentResults results, string outputDirectory)
    {
        page.Append("<section id=\"grids\">\n<h2>Samples</h2>\n");
        bool any = false;
        foreach (var arm in results.Summary)
        {
            var figures = new StringBuilder();
            foreach (var attack in results.Setup.Attacks.Names)
            {
                string caption = $"{arm.Arm} · {attack}: {ResultsTable.ExtractionHeader(attack, results.Setup.ConceptNoun)} "
                                 + (arm.Extraction.TryGetValue(attack, out var rate) ? rate.Format() : "not measured");
                if (Html.EmbeddedPng(outputDirectory, ReportFiles.Grid(arm.Arm, attack), caption) is not { } image) continue;
                figures.Append("<figure>").Append(image).Append("<figcaption>").Append(Html.Escape(caption)).Append("</figcaption></figure>\n");
            }
            if (figures.Length == 0) continue;
            any = true;
            page.Append("<h3>").Append(Html.Escape(ResultsTable.ArmLabel(arm.Arm, results.Setup.ConceptNoun))).Append("</h3>\n<div class=\"grids\">\n").Append(figures).Append("</div>\n");
        }
        if (!any) page.Append("<p>No sample grids were found in grids/.</p>\n");
        page.Append("</section>\n");
    }

    static void AppendRuns(StringBuilder page, ExperimentResults results, string outputDirectory)
    {
        var attacks = results.Setup.Attacks.Names;
        page.Append("<section id=\"runs\">\n<h2>Runs</h2>\n<p>Every fine-tuned arm at every seed, and the base model attacked at each seed's settings (the floor). Extraction cells are rate ")
            .Append($"[95% Wilson interval] (images with the {results.Setup.ConceptNoun} / images judged).</p>\n<div class=\"scroll\">\n<table id=\"runs-table\">\n<thead><tr>")
            .Append("<th scope=\"col\">arm</th><th scope=\"col\">seed</th><th scope=\"col\">train s</th><th scope=\"col\">final loss</th>");
        foreach (var attack in attacks) page.Append("<th scope=\"col\">").Append(Html.Escape(ResultsTable.ExtractionHeader(attack, results.Setup.ConceptNoun))).Append("</th>");
        page.Append("<th scope=\"col\">attack s</th><th scope=\"col\">evaluation</th></tr></thead>\n<tbody>\n");
        foreach (var run in results.Runs)
        {
            page.Append("<tr").Append(Html.Attribute("data-arm", run.Arm)).Append("><th scope=\"row\">").Append(Html.Escape(run.Arm)).Append("</th>")
                .Append("<td>").Append(Html.Escape(Seed(run))).Append("</td>")
                .Append("<td>").Append(Html.Escape(Decimal(run.TrainSeconds, 0))).Append("</td>")
                .Append("<td>").Append(Html.Escape(Decimal(run.FinalLoss, 4))).Append("</td>");
            foreach (var attack in attacks)
            {
                string cell = run.Attacks.TryGetValue(attack, out var metrics) && metrics.Extraction is { } extraction
                    ? extraction.Rate.Format() : "–";
                page.Append("<td>").Append(Html.Escape(cell)).Append("</td>");
            }
            var seconds = attacks.Where(run.AttackSeconds.ContainsKey).Select(a => $"{a} {Decimal(run.AttackSeconds[a], 0)}");
            page.Append("<td class=\"text\">").Append(Html.Escape(string.Join(", ", seconds))).Append("</td>");
            string link = RunLink(outputDirectory, run.EvalDirectory);
            page.Append("<td class=\"text\"><a").Append(Html.Attribute("href", Html.RelativeHref(link))).Append('>')
                .Append(Html.Escape(link)).Append("</a></td></tr>\n");
        }
        page.Append("</tbody>\n</table>\n</div>\n</section>\n");
    }

    /// <summary>
    /// The evaluation directory relative to the report. results.json may hold it absolute, relative to the output
    /// directory, or relative to the working directory the experiment ran in; the first that exists wins.
    /// </summary>
    static string RunLink(string outputDirectory, string directory)
    {
        if (string.IsNullOrEmpty(directory)) return ".";
        string report = Path.GetFullPath(outputDirectory);
        string underReport = Path.GetFullPath(directory, report);
        string resolved = Path.IsPathRooted(directory) || Directory.Exists(underReport) || !Directory.Exists(Path.GetFullPath(directory))
            ? underReport
            : Path.GetFullPath(directory);
        return Path.GetRelativePath(report, resolved).Replace(Path.DirectorySeparatorChar, '/');
    }
}
