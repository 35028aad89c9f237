using Excise.Attacks;
using Excise.Projection;
using Excise.Tests.Training;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Excise.Tests.Attacks;

/// <summary>What textual inversion may and may not change, and that it optimises what it says it does.</summary>
[Collection(AttackVictimCollection.Name)]
public class InversionMechanicsTests
{
    readonly AttackVictim victim;
    readonly ITestOutputHelper output;
    public InversionMechanicsTests(AttackVictim victim, ITestOutputHelper output) { this.victim = victim; this.output = output; }

    [Fact]
    public void The_vectors_learn_the_loss_falls_and_the_UNet_is_untouched()
    {
        var target = victim.Victim;
        var before = target.Model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        var flagsBefore = target.Model.parameters().Select(p => p.requires_grad).ToList();
        var heldOut = HeldOutConcept.Build(target.Config!, "the Acme logo", 8);
        var settings = new InversionSettings(Images: 8, Steps: 30, LearningRate: 2e-2, Vectors: 2, BatchSize: 8, EvaluationDraws: 4);

        var (token, report) = TextualInversion.Learn(target, heldOut, settings, seed: 3);
        output.WriteLine($"inversion: loss {report.InitialLoss:F5} → {report.FinalLoss:F5}, {report.SecondsPerStep:F3} s/step, vector change {report.VectorChangeNorm:F3} of {report.InitialVectorNorm:F3}");
        using (token)
        {
            Assert.Equal(new long[] { 2, 384 }, token.Vectors.shape);
            Assert.True(report.VectorChangeNorm > 0.01 * report.InitialVectorNorm, $"change {report.VectorChangeNorm} of {report.InitialVectorNorm}");
            Assert.True(report.FinalLoss < report.InitialLoss, $"loss {report.InitialLoss:F5} → {report.FinalLoss:F5}");
            Assert.All(report.StepLosses, l => Assert.True(double.IsFinite(l)));
        }
        foreach (var (name, value) in target.Model.state_dict())
            Assert.True(before[name].eq(value).all().ToBoolean(), $"{name} changed");
        Assert.Equal(flagsBefore, target.Model.parameters().Select(p => p.requires_grad).ToList());
        Assert.All(target.Model.parameters(), p => Assert.Null(p.grad));
        foreach (var t in before.Values) t.Dispose();
    }

    [Fact]
    public void The_placeholder_tokens_are_found_and_replaced()
    {
        var tokenizer = TinyRun.Encoder.Tokenizer;
        var two = PlaceholderPrompt.Build(new InversionSettings(Vectors: 2), 9, tokenizer, 32);
        Assert.Equal("a photo of an ankle boot with logo logo", two.Text);
        Assert.Equal("a photo of an ankle boot with <*>", two.Display);
        Assert.Equal(2, two.Positions.Length);
        Assert.Equal(two.Positions[0] + 1, two.Positions[1]);
        var tokens = tokenizer.Tokenize(two.Text, 32);
        Assert.All(two.Positions, p => Assert.Equal("logo", tokens.Tokens[p]));

        var front = PlaceholderPrompt.Build(new InversionSettings(Template: "a <*> {class}", PlaceholderWord: "emblem"), 8, tokenizer, 32);
        Assert.Equal("an emblem bag", front.Text);
        Assert.Equal("emblem", tokenizer.Tokenize(front.Text, 32).Tokens[front.Positions[0]]);

        Assert.Throws<ArgumentException>(() => PlaceholderPrompt.Build(new InversionSettings(PlaceholderWord: "xyzzyqv"), 0, tokenizer, 32));

        using var states = ones(2, 5, 3);
        using var mask = tensor(new float[] { 1, 1, 1, 0, 0, 1, 1, 1, 1, 0 }, new long[] { 2, 5 });
        using var oneHot = zeros(2, 5, 1);
        oneHot[0, 2, 0] = tensor(1f);
        oneHot[1, 4, 0] = tensor(1f);
        using var vector = full(1, 3, 7f);
        var (inserted, newMask) = TextualInversion.Insert(states, mask, oneHot, vector);
        Assert.Equal(7f, inserted[0, 2, 1].ToSingle());
        Assert.Equal(7f, inserted[1, 4, 0].ToSingle());
        Assert.Equal(1f, inserted[1, 3, 0].ToSingle());
        Assert.Equal(1f, newMask[1, 4].ToSingle());
        Assert.Equal(0f, newMask[0, 4].ToSingle());
    }

    [Theory]
    [InlineData("the Acme logo", "Acme")]
    [InlineData("The Red Star emblem", "Red Star")]
    [InlineData("Globex's trademark", "Globex")]
    [InlineData("the logo", null)]
    public void The_brand_is_the_phrase_without_articles_and_generic_nouns(string phrase, string? brand) =>
        Assert.Equal(brand, ConceptParaphrases.BrandOf(phrase));

    [Fact]
    public void The_built_in_paraphrases_of_the_Acme_logo()
    {
        var prompts = AttackPrompts.Expand(ConceptParaphrases.BuiltInTemplates("the Acme logo")).Where(p => p.ClassLabel == 8).Select(p => p.Text);
        Assert.Equal(new[]
        {
            "a photo of an Acme-branded bag", "a photo of a bag bearing the Acme emblem", "a photo of a bag with Acme's logo",
            "a photo of a bag with the Acme mark", "a photo of a bag with the Acme trademark", "a photo of a bag with an Acme badge",
        }, prompts);
        Assert.Throws<ArgumentException>(() => ConceptParaphrases.BuiltInTemplates("the logo"));
    }
}
