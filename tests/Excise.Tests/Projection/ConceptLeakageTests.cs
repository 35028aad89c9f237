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
    public void A_prompt_without_the_concept_is_refused()
    {
        var e = Assert.Throws<ArgumentException>(() => ConceptLeakage.Measure(TinyRun.Encoder, bases.Acme, "the Acme logo", ["a sneaker"]));
        Assert.Contains("a sneaker", e.Message);
    }
}
