using Excise.Data;
using Excise.Projection;
using Excise.Tests.Training;

namespace Excise.Tests.Projection;

/// <summary>Prompt construction, user prompt validation, the contrastive removal rule and concept-token location (tokenizer only, no encoding).</summary>
public class ConceptSubspacePromptTests
{
    [Fact]
    public void Built_in_prompts_cover_every_class_and_phrasing_with_fixed_articles()
    {
        var prompts = ConceptSubspaceBuilder.BuiltInPrompts("the Acme logo");

        Assert.Equal(ConceptPrompts.ClassTemplates.Count * FashionMnistClasses.Count + ConceptPrompts.ConceptOnlyTemplates.Count, prompts.Count);
        Assert.Equal(prompts.Count, prompts.Distinct().Count());
        Assert.All(prompts, p => Assert.Contains("the Acme logo", p));
        foreach (var noun in FashionMnistClasses.CaptionNouns)
            Assert.True(prompts.Count(p => p.Contains(noun)) >= ConceptPrompts.ClassTemplates.Count, noun);
        Assert.Contains("an ankle boot with the Acme logo", prompts);
        Assert.Contains("the Acme logo on a sandal", prompts);
        Assert.Contains("a black and white picture of a pair of trousers featuring the Acme logo", prompts);
        Assert.Contains("the Acme logo", prompts);
        Assert.DoesNotContain(prompts, p => p.Contains("a ankle"));
    }

    [Fact]
    public void Built_in_prompts_never_rewrite_the_concept_itself()
    {
        // Articles are fixed before the concept goes in, so even an ungrammatical concept keeps its exact span.
        var prompts = ConceptPrompts.BuiltIn("a umbrella mark");
        Assert.All(prompts, p => Assert.Equal("a umbrella mark", p.Text.Substring(p.Spans.Single().Start, p.Spans.Single().Length)));
    }

    [Fact]
    public void User_lines_use_placeholders_or_literal_phrases()
    {
        string[] concepts = ["the Acme logo", "a red scarf"];
        var prompts = ConceptPrompts.FromLines(concepts,
            ["# comment", "", "a tote bag printed with {concept}", "{} seen from above", "  THE ACME LOGO stitched on a cap  "], "prompts.txt");

        Assert.Equal(
            ["a tote bag printed with the Acme logo", "a tote bag printed with a red scarf", "the Acme logo seen from above",
             "a red scarf seen from above", "THE ACME LOGO stitched on a cap"],
            prompts.Select(p => p.Text));
        Assert.Equal("the Acme logo", prompts[^1].Concept);
        Assert.Equal((0, 13), prompts[^1].Spans.Single());
    }

    [Fact]
    public void User_line_without_concept_or_placeholder_is_refused_saying_why()
    {
        var e = Assert.Throws<ArgumentException>(() =>
            ConceptPrompts.FromLines(["the Acme logo"], ["a bag with {}", "a sneaker with a logo"], "my-prompts.txt"));
        Assert.Contains("my-prompts.txt: line 2", e.Message);
        Assert.Contains("neither the concept phrase (\"the Acme logo\")", e.Message);
        Assert.Contains("{concept} or {}", e.Message);
    }

    [Fact]
    public void Prompt_file_is_read_and_its_errors_name_the_file()
    {
        using var dir = new TempDir();
        var good = dir.File("good.txt");
        File.WriteAllLines(good, ["# prompts", "a bag with {}", "", "the Acme logo on a hat"]);
        Assert.Equal(["a bag with {}", "the Acme logo on a hat"], ConceptPrompts.ReadFile(good, ["the Acme logo"]));

        var bad = dir.File("bad.txt");
        File.WriteAllLines(bad, ["a bag with {}", "a hat"]);
        Assert.StartsWith($"{bad}: line 2", Assert.Throws<ArgumentException>(() => ConceptPrompts.ReadFile(bad, ["the Acme logo"])).Message);

        var empty = dir.File("empty.txt");
        File.WriteAllLines(empty, ["# nothing", ""]);
        Assert.Contains(empty, Assert.Throws<InvalidDataException>(() => ConceptPrompts.ReadFile(empty, ["the Acme logo"])).Message);
    }

    [Theory]
    [InlineData("a sneaker with the Acme logo", "a sneaker")]
    [InlineData("the Acme logo on a bag", "a bag")]
    [InlineData("the Acme logo", "")]
    [InlineData("a picture of the Acme logo", "a picture")]
    [InlineData("a picture of a coat marked with the Acme logo", "a picture of a coat")]
    [InlineData("a sneaker with the Acme logo and white laces", "a sneaker and white laces")]
    [InlineData("a bag with the Acme logo, photographed in a studio", "a bag, photographed in a studio")]
    [InlineData("the Acme logo, large", "large")]
    public void WithoutConcept_removes_the_phrase_and_its_connector(string prompt, string expected) =>
        Assert.Equal(expected, ConceptPrompt.FromLiteral(prompt, "the Acme logo")!.WithoutConcept);

    [Fact]
    public void WithoutConcept_of_every_built_in_prompt_is_a_plain_caption()
    {
        foreach (var prompt in ConceptPrompts.BuiltIn("the Acme logo"))
        {
            var plain = prompt.WithoutConcept;
            Assert.DoesNotContain("acme", plain, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("  ", plain);
            foreach (var dangling in new[] { " with", " of", " on", " bearing", " featuring", " showing" })
                Assert.False(plain.EndsWith(dangling), $"\"{prompt.Text}\" → \"{plain}\"");
        }
    }

    [Fact]
    public void Concept_tokens_are_found_across_WordPiece_splits()
    {
        var tokenizer = TinyRun.Encoder.Tokenizer;
        var prompt = ConceptPrompt.FromLiteral("a photo of a sneaker with the Acme logo", "the Acme logo")!;
        var tokens = tokenizer.Tokenize(prompt.Text, 32);
        var positions = ConceptTokenLocator.Positions(tokens, prompt);

        Assert.Equal(["[CLS]", "a", "photo", "of", "a", "sneak", "##er", "with"], tokens.Tokens.Take(8));
        Assert.Equal([8, 9, 10, 11], positions);
        Assert.Equal(["the", "ac", "##me", "logo"], positions.Select(p => tokens.Tokens[p]));

        var leading = ConceptPrompt.FromLiteral("The ACME logo on a bag", "the Acme logo")!;
        var leadingTokens = tokenizer.Tokenize(leading.Text, 32);
        Assert.Equal(["the", "ac", "##me", "logo"], ConceptTokenLocator.Positions(leadingTokens, leading).Select(p => leadingTokens.Tokens[p]));
    }

    [Fact]
    public void Concept_tokens_cut_off_by_truncation_are_reported_clearly()
    {
        var prompt = ConceptPrompt.FromLiteral("a black and white picture of a pair of trousers featuring the Acme logo", "the Acme logo")!;
        var e = Assert.Throws<ArgumentException>(() => ConceptTokenLocator.Positions(TinyRun.Encoder.Tokenizer, prompt, 8));
        Assert.Contains("raise the max length", e.Message);
    }
}
