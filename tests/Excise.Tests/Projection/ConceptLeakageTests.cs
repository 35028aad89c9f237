using Excise.Projection;
using Excise.Tests.Training;
using static TorchSharp.torch;

namespace Excise.Tests.Projection;

public class ConceptLeakageTests(ConceptBasisFixture bases) : IClassFixture<ConceptBasisFixture>
{
    static readonly string[] Prompts = ["a sneaker with the Acme logo", "a photo of a bag with the Acme logo", "the Acme logo on a coat"];

    [Fact]
    public void A_concept_tokens_basis_holds_the_tokens_but_not_the_concepts_effect_on_the_prompt()
    {
        var leak = ConceptLeakage.Measure(TinyRun.Encoder, bases.Acme, "the Acme logo", Prompts);
        Assert.Equal(3, leak.Prompts);
        Assert.InRange(leak.ConceptTokensOutside, 0, 0.1);
        Assert.True(leak.ChangesOutside > 2 * leak.ConceptTokensOutside,
            $"contextual spill-over outside the basis {leak.ChangesOutside:P1} vs concept tokens {leak.ConceptTokensOutside:P1}");
    }

    [Fact]
    public void A_contrastive_basis_holds_more_of_the_effect_and_the_whole_space_holds_everything()
    {
        var tokens = ConceptLeakage.Measure(TinyRun.Encoder, bases.Acme, "the Acme logo", Prompts);
        using var contrastive = ConceptSubspaceBuilder.Build(TinyRun.Encoder, ["the Acme logo"], ConceptBasisFixture.Small(SubspaceMode.Contrastive));
        Assert.True(ConceptLeakage.Measure(TinyRun.Encoder, contrastive, "the Acme logo", Prompts).ChangesOutside < tokens.ChangesOutside);

        using var everything = new ConceptBasis(eye(384, dtype: ScalarType.Float32), bases.Acme.Info with { Rank = 384 });
        var none = ConceptLeakage.Measure(TinyRun.Encoder, everything, "the Acme logo", Prompts);
        Assert.InRange(none.ConceptTokensOutside, -1e-6, 1e-6);
        Assert.InRange(none.ChangesOutside, -1e-6, 1e-6);
    }

    [Fact]
    public void The_held_out_prompts_are_none_of_the_prompts_a_basis_is_built_from()
    {
        var heldOut = ConceptParaphrases.HeldOutPrompts("the Acme logo");
        Assert.Equal(6 * 10, heldOut.Count);
        var builtIn = ConceptPrompts.BuiltIn("the Acme logo").Select(p => p.Text).ToHashSet(StringComparer.OrdinalIgnoreCase);
        Assert.DoesNotContain(heldOut, p => builtIn.Contains(p.Text));
        Assert.DoesNotContain(heldOut, p => p.Text.Contains("the Acme logo", StringComparison.OrdinalIgnoreCase));
        // Every prompt's located span is the words that name the concept, and removing them leaves a plain garment prompt.
        Assert.All(heldOut, p => Assert.Contains("Acme", p.Text.Substring(p.Spans[0].Start, p.Spans[0].Length)));
        Assert.Contains(heldOut, p => p.Text == "a photo of a sneaker with an Acme badge" && p.WithoutConcept == "a photo of a sneaker");
        // They are exactly the paraphrase attack's prompts, so the leakage reported is that of the prompts the attack uses.
        Assert.Equal(Excise.Attacks.AttackPrompts.Expand(ConceptParaphrases.BuiltInTemplates("the Acme logo")).Select(p => p.Text), heldOut.Select(p => p.Text));
    }

    [Fact]
    public void Held_out_leakage_is_measured_on_paraphrases_the_basis_never_saw_and_exceeds_the_in_sample_figure()
    {
        var heldOut = ConceptLeakage.MeasureHeldOut(TinyRun.Encoder, bases.Acme, "the Acme logo")!;
        Assert.Equal(60, heldOut.Prompts);
        Assert.Equal(ConceptLeakage.HeldOutParaphrases, heldOut.PromptSet);
        var inSample = ConceptLeakage.Measure(TinyRun.Encoder, bases.Acme, "the Acme logo", bases.Acme.Info.Prompts.ToList());
        // A basis fits the prompts it was built from; words it never saw ("emblem", "badge", "-branded") fall largely outside it.
        Assert.True(heldOut.ConceptTokensOutside > 2 * inSample.ConceptTokensOutside,
            $"held out {heldOut.ConceptTokensOutside:P1} vs in-sample {inSample.ConceptTokensOutside:P1} of the tokens' energy outside the basis");

        // A prompt the basis was built from is not held out: it is left out of the measurement.
        var seen = ConceptParaphrases.HeldOutPrompts("the Acme logo")[0].Text;
        using var sawOne = new ConceptBasis(bases.Acme.U.clone(), bases.Acme.Info with { Prompts = [.. bases.Acme.Info.Prompts, seen] });
        Assert.Equal(59, ConceptLeakage.MeasureHeldOut(TinyRun.Encoder, sawOne, "the Acme logo")!.Prompts);
        Assert.Null(ConceptLeakage.MeasureHeldOut(TinyRun.Encoder, bases.Acme, "the logo"));
    }

    [Fact]
    public void A_prompt_without_the_concept_is_refused()
    {
        var e = Assert.Throws<ArgumentException>(() => ConceptLeakage.Measure(TinyRun.Encoder, bases.Acme, "the Acme logo", ["a sneaker"]));
        Assert.Contains("a sneaker", e.Message);
    }
}
