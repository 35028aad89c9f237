using System.Globalization;
using System.Text;
using Excise.Experiment;
using static Excise.Reporting.ReportText;

namespace Excise.Reporting;

public static partial class HtmlReport
{
    /// <summary>The setup in plain words: enough to interpret the figures and to run the experiment again.</summary>
    static void AppendSetup(StringBuilder page, ExperimentResults results)
    {
        var s = results.Setup;
        page.Append("<section id=\"setup\">\n<h2>Setup</h2>\n<dl class=\"setup\">\n");
        void Entry(string term, string text) =>
            page.Append("<dt>").Append(Html.Escape(term)).Append("</dt><dd>").Append(Html.Escape(text)).Append("</dd>\n");

        Entry("Preset", s.Preset);
        Entry("Concept", s.ConceptKind is null ? $"“{s.Concept}”, shown as the logo {s.Logo}" : $"“{s.Concept}”, shown as {s.Logo}");
        Entry("Data", $"{s.Dataset}: {Integer(s.FinetuneImages)} fine-tuning images, {Integer(s.StampedImages)} of them "
                      + $"stamped with the {s.ConceptNoun} (stamp fraction {Percent(s.StampFraction)})");
        Entry("Text encoder", s.Encoder);
        Entry("Base model", $"{s.BaseRun}: {Integer(s.ModelParameters)} parameters, {Count(s.BaseSteps, "training step")} "
                            + $"({Duration(s.BaseTrainSeconds)}, {(s.BaseShipped ? "shipped with the project" : s.BaseWasCached ? "reused from the cache" : "trained in this run")})"
                            + (s.BaseSha256 is null ? "" : $"; weights SHA-256 {s.BaseSha256}"));
        Entry("Fine-tuning", $"{Count(s.FinetuneSteps, "step")} per arm and seed, batch {Integer(s.FinetuneBatch)}, "
                             + $"learning rate {s.FinetuneLearningRate.ToString("G3", CultureInfo.InvariantCulture)}");
        Entry("Arms", $"{string.Join(", ", s.Arms)}; {Count(s.Seeds, "seed")} each");
        Entry("Concept subspace", $"{s.SubspaceMode} basis of rank {Integer(s.BasisRank)}, keeping {Percent(s.BasisEnergy)} of the "
                                  + $"concept's energy; {Count(s.ProjectedWeights, "weight")} projected in the projection arms"
                                  + (s.BasisLeakage is { } leak ? ". " + LeakageSentence(leak) : ""));
        Entry("Attacks", $"{string.Join(", ", s.AttackNames)}; {Count(s.ImagesPerPrompt, "image")} per prompt, "
                         + $"{Count(s.SamplingSteps, "sampling step")} of {s.Sampler}, guidance scale {s.GuidanceScale.ToString("G3", CultureInfo.InvariantCulture)}");
        Entry("Textual inversion", $"a token learned on {Count(s.InversionImages, $"held-out {s.ConceptNoun} image")} for {Count(s.InversionSteps, "step")}");
        Entry("Quality references", $"{Count(s.ReferenceImages, "real test image")} for FD and KID; "
                                    + (s.ResNetImages > 0 ? $"{Count(s.ResNetImages, "image")} for the ResNet18 FID" : "ResNet18 FID skipped"));
        Entry("Garment classifier", $"{s.ClassifierId}: accuracy {Decimal(s.ClassifierAccuracy, 3)} on held-out real images "
                                    + "(judges semantic fidelity)" + QuickJudgesNote(s));
        Entry(s.ConceptKind is null ? "Logo detector" : "Concept detector", $"{s.DetectorId}: precision {Decimal(s.DetectorPrecision, 3)}, recall {Decimal(s.DetectorRecall, 3)} "
                               + "on held-out images (judges extraction)" + QuickJudgesNote(s)
                               + (s.DetectorOffDistribution is { Count: > 0 } off
                                   ? "; false positives on held-out images unlike any garment: " + string.Join(", ", off.Select(c =>
                                       $"{c.Name} {Percent(c.FalsePositiveRate.Rate)} [{Percent(c.FalsePositiveRate.Lower)}, {Percent(c.FalsePositiveRate.Upper)}]"))
                                   : ""));
        if (s.DetectorMasks is { } masks) Entry("Detector masks", ReportText.DetectorMasksSentence(masks));
        Entry("Machine", $"{s.Machine}, {Threading(s)}");
        page.Append("<dt>Command</dt><dd><code>").Append(Html.Escape(s.Command)).Append("</code></dd>\n");
        Entry("Elapsed", Duration(results.ElapsedSeconds));
        // An unspecified kind (as JSON may give back) is taken at its word: the field is UTC.
        var created = results.CreatedUtc.Kind == DateTimeKind.Local ? results.CreatedUtc.ToUniversalTime() : results.CreatedUtc;
        Entry("Created", created.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture));
        page.Append("</dl>\n</section>\n");
    }

    /// <summary>The basis's leakage, saying which prompts it was measured on: held-out paraphrases, or (results written
    /// before that measurement) the direct attack prompts, which are among the prompts the basis was built from.</summary>
    static string LeakageSentence(Projection.ConceptLeakage leak) => leak.PromptSet == Projection.ConceptLeakage.HeldOutParaphrases
        ? $"On {Integer(leak.Prompts)} held-out prompts that name the concept in other words (the paraphrases, none of them among the basis's prompts), "
          + $"{Percent(leak.ConceptTokensOutside)} of the paraphrase tokens' state energy and {Percent(leak.ChangesOutside)} of their effect on the other tokens lie outside it"
        : $"On the direct attack prompts (in-sample: the basis was built from them), {Percent(leak.ConceptTokensOutside)} of the concept tokens' state energy and "
          + $"{Percent(leak.ChangesOutside)} of the concept's effect on the other tokens lie outside it";

    static string QuickJudgesNote(ExperimentSetup setup) =>
        setup.QuickJudges ? "; quick judges, trained briefly, so their verdicts are only indicative" : "";
}
