using Excise.Projection;
using Excise.Tests.Training;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Excise.Tests.Projection;

/// <summary>The full built-in "the Acme logo" basis (concept tokens, 99% energy), built once for the semantic tests.</summary>
public sealed class AcmeBasisFixture : IDisposable
{
    public ConceptBasis Basis { get; } = ConceptSubspaceBuilder.Build(TinyRun.Encoder, ["the Acme logo"], new SubspaceOptions());
    public void Dispose() => Basis.Dispose();
}

public class ConceptSubspaceTests(AcmeBasisFixture acme, ITestOutputHelper output) : IClassFixture<AcmeBasisFixture>
{
    static IReadOnlyList<ConceptPrompt> SmallPrompts(string concept) =>
        ConceptPrompts.FromLines([concept], ConceptBasisFixture.SmallTemplates, "test templates");

    static int RealLength(string text) => TinyRun.Encoder.Tokenizer.Tokenize(text, TinyRun.Encoder.MaxLength).RealLength;

    [Fact]
    public void Built_in_basis_keeps_the_default_energy_with_few_directions()
    {
        var info = acme.Basis.Info;
        output.WriteLine($"prompts {info.Prompts.Count}, vectors {info.VectorsCollected}/{info.VectorsKept}, rank {acme.Basis.Rank}, energy {info.EnergyKept:F4}");
        Assert.Equal(ConceptSubspaceBuilder.BuiltInPrompts("the Acme logo").Count * 4, info.VectorsCollected);
        Assert.True(info.EnergyKept >= 0.99);
        Assert.True(acme.Basis.Rank < 64, $"rank {acme.Basis.Rank}: the concept tokens should occupy a small part of the 384 dimensions");
        Assert.True(SubspaceMath.OrthonormalityError(acme.Basis.U) < 1e-5);
    }

    [Fact]
    public void Modes_collect_the_documented_vectors()
    {
        var prompts = SmallPrompts("the Acme logo");
        var conceptTokens = ConceptVectorCollector.Collect(TinyRun.Encoder, prompts, SubspaceMode.ConceptTokens);
        var allTokens = ConceptVectorCollector.Collect(TinyRun.Encoder, prompts, SubspaceMode.AllTokens);
        var contrastive = ConceptVectorCollector.Collect(TinyRun.Encoder, prompts, SubspaceMode.Contrastive);

        Assert.Equal(prompts.Count * 4, conceptTokens.Count);
        Assert.Equal(prompts.Sum(p => RealLength(p.Text)), allTokens.Count);
        Assert.Equal(prompts.Sum(p => Math.Min(RealLength(p.Text), RealLength(p.WithoutConcept)) + 1), contrastive.Count);
        Assert.All(allTokens.Concat(contrastive), v => Assert.Equal(384, v.Length));

        // All tokens include the concept tokens themselves (same states, same prompts).
        Assert.All(conceptTokens, v => Assert.Contains(allTokens, w => w.SequenceEqual(v)));

        // "a bag with the Acme logo" vs "a bag": [CLS] a bag with the ac ##me logo [SEP] vs [CLS] a bag [SEP]
        // gives 4 aligned positions plus the pooled difference; [CLS] differs because the encoder is bidirectional.
        var bag = contrastive.Take(5).ToList();
        Assert.All(bag, v => Assert.True(v.Sum(x => x * x) > 1e-6, "every aligned difference is non-zero"));
        output.WriteLine($"vectors from {prompts.Count} prompts: concept tokens {conceptTokens.Count}, all tokens {allTokens.Count}, contrastive {contrastive.Count}");
    }

    [Fact]
    public void All_tokens_basis_contains_the_concept_token_states()
    {
        using var all = ConceptSubspaceBuilder.Build(TinyRun.Encoder, ["the Acme logo"], ConceptBasisFixture.Small(SubspaceMode.AllTokens));
        var conceptTokens = ConceptVectorCollector.Collect(TinyRun.Encoder, SmallPrompts("the Acme logo"), SubspaceMode.ConceptTokens);
        double captured = SubspaceMath.CapturedEnergyFraction(all.U, conceptTokens);
        output.WriteLine($"all-tokens basis rank {all.Rank} captures {captured:F4} of the concept-token energy");
        Assert.True(captured > 0.97, $"captured {captured}");
    }

    [Fact]
    public void Several_concepts_share_one_basis_that_captures_each()
    {
        using var both = ConceptSubspaceBuilder.Build(TinyRun.Encoder, ["the Acme logo", "a red scarf"], ConceptBasisFixture.Small());
        Assert.Equal(["the Acme logo", "a red scarf"], both.Info.Concepts);
        Assert.Equal(2 * ConceptBasisFixture.SmallTemplates.Length, both.Info.Prompts.Count);
        Assert.Equal(ConceptBasisFixture.SmallTemplates.Length * (4 + 3), both.Info.VectorsCollected); // the ac ##me logo / a red scarf

        var acmeVectors = ConceptVectorCollector.Collect(TinyRun.Encoder, SmallPrompts("the Acme logo"), SubspaceMode.ConceptTokens);
        var scarfVectors = ConceptVectorCollector.Collect(TinyRun.Encoder, SmallPrompts("a red scarf"), SubspaceMode.ConceptTokens);
        double acmeCaptured = SubspaceMath.CapturedEnergyFraction(both.U, acmeVectors);
        double scarfCaptured = SubspaceMath.CapturedEnergyFraction(both.U, scarfVectors);
        double scarfByAcmeOnly = SubspaceMath.CapturedEnergyFraction(acme.Basis.U, scarfVectors);
        output.WriteLine($"joint basis rank {both.Rank}: acme {acmeCaptured:F3}, scarf {scarfCaptured:F3}; acme-only basis captures scarf {scarfByAcmeOnly:F3}");
        Assert.True(acmeCaptured > 0.95 && scarfCaptured > 0.95);
        Assert.True(scarfByAcmeOnly < 0.6);
    }

    [Fact]
    public void Basis_is_closer_to_other_phrasings_of_the_concept_than_to_unrelated_phrases()
    {
        string[] related = ["Acme's logo", "an Acme emblem", "the logo of Acme"];
        string[] unrelated = ["a red scarf", "the Zeta badge", "a wooden chair"];
        using var leading = acme.Basis.U[.., ..4].contiguous();

        var captured = new Dictionary<string, double>();
        var meanCosine = new Dictionary<string, double>();
        foreach (var phrase in related.Concat(unrelated).Append("the Nike logo"))
        {
            var vectors = ConceptVectorCollector.Collect(TinyRun.Encoder, SmallPrompts(phrase), SubspaceMode.ConceptTokens);
            captured[phrase] = SubspaceMath.CapturedEnergyFraction(acme.Basis.U, vectors);
            var (_, rightVectors) = SubspaceMath.Decompose(vectors);
            using (rightVectors)
            using (var theirs = rightVectors[..4].t())
                meanCosine[phrase] = SubspaceMath.PrincipalCosines(leading, theirs).Average();
            output.WriteLine($"{phrase,-18} energy captured by the Acme basis (rank {acme.Basis.Rank}) {captured[phrase]:F3}   " +
                             $"mean principal cosine of leading 4-dim subspaces {meanCosine[phrase]:F3}");
        }

        double capturedMargin = related.Min(p => captured[p]) - unrelated.Max(p => captured[p]);
        double cosineMargin = related.Min(p => meanCosine[p]) - unrelated.Max(p => meanCosine[p]);
        output.WriteLine($"margins: captured energy {capturedMargin:F3}, mean principal cosine {cosineMargin:F3}");
        Assert.True(capturedMargin > 0.3, $"captured-energy margin {capturedMargin:F3}");
        Assert.True(cosineMargin > 0.3, $"principal-cosine margin {cosineMargin:F3}");
    }
}
