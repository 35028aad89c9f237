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

        var (run, concept, model, finetune, basis, attacks, judges) = (s.Execution, s.Concept, s.Base, s.Finetune, s.Basis, s.Attacks, s.Judges);
        Entry("Preset", run.Preset);
        Entry("Concept", concept.Kind is null ? $"“{concept.Phrase}”, shown as the logo {concept.Look}" : $"“{concept.Phrase}”, shown as {concept.Look}");
        Entry("Data", $"{concept.Dataset}: {Integer(concept.FinetuneImages)} fine-tuning images, {Integer(concept.StampedImages)} of them "
                      + $"stamped with the {s.ConceptNoun} (stamp fraction {Percent(concept.StampFraction)})");
        Entry("Text encoder", model.Encoder);
        Entry("Base model", $"{model.Run}: {Integer(model.ModelParameters)} parameters, {Count(model.Steps, "training step")} "
                            + $"({Duration(model.TrainSeconds)}, {(model.Shipped ? "shipped with the project" : model.WasCached ? "reused from the cache" : "trained in this run")})"
                            + (model.Sha256 is null ? "" : $"; weights SHA-256 {model.Sha256}"));
        Entry("Fine-tuning", $"{Count(finetune.Steps, "step")} per arm and seed, batch {Integer(finetune.Batch)}, "
                             + $"learning rate {finetune.LearningRate.ToString("G3", CultureInfo.InvariantCulture)}");
        Entry("Arms", $"{string.Join(", ", run.Arms)}; {Count(run.Seeds, "seed")} each");
        Entry("Concept subspace", $"{basis.SubspaceMode} basis of rank {Integer(basis.Rank)}, keeping {Percent(basis.Energy)} of the "
                                  + $"concept's energy; {Count(basis.ProjectedWeights, "weight")} projected in the projection arms"
                                  + (basis.Leakage is { } leak ? ". " + LeakageSentence(leak) : ""));
        Entry("Attacks", $"{string.Join(", ", attacks.Names)}; {Count(attacks.ImagesPerPrompt, "image")} per prompt, "
                         + $"{Count(attacks.SamplingSteps, "sampling step")} of {attacks.Sampler}, guidance scale {attacks.GuidanceScale.ToString("G3", CultureInfo.InvariantCulture)}");
        Entry("Textual inversion", $"a token learned on {Count(attacks.InversionImages, $"held-out {s.ConceptNoun} image")} for {Count(attacks.InversionSteps, "step")}");
        Entry("Quality references", $"{Count(judges.ReferenceImages, "real test image")} for FD and KID; "
                                    + (judges.ResNetImages > 0 ? $"{Count(judges.ResNetImages, "image")} for the ResNet18 FID" : "ResNet18 FID skipped"));
        Entry("Garment classifier", $"{judges.ClassifierId}: accuracy {Decimal(judges.ClassifierAccuracy, 3)} on held-out real images "
                                    + "(judges semantic fidelity)" + QuickJudgesNote(judges));
        Entry(concept.Kind is null ? "Logo detector" : "Concept detector", $"{judges.DetectorId}: precision {Decimal(judges.DetectorPrecision, 3)}, recall {Decimal(judges.DetectorRecall, 3)} "
                               + "on held-out images (judges extraction)" + QuickJudgesNote(judges)
                               + (judges.DetectorOffDistribution is { Count: > 0 } off
                                   ? "; false positives on held-out images unlike any garment: " + string.Join(", ", off.Select(c =>
                                       $"{c.Name} {Percent(c.FalsePositiveRate.Rate)} [{Percent(c.FalsePositiveRate.Lower)}, {Percent(c.FalsePositiveRate.Upper)}]"))
                                   : ""));
        if (judges.DetectorMasks is { } masks) Entry("Detector masks", ReportText.DetectorMasksSentence(masks));
        Entry("Machine", $"{run.Machine}, {Threading(run)}");
        page.Append("<dt>Command</dt><dd><code>").Append(Html.Escape(run.Command)).Append("</code></dd>\n");
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

    static string QuickJudgesNote(JudgeSetup judges) =>
        judges.Quick ? "; quick judges, trained briefly, so their verdicts are only indicative" : "";
}
