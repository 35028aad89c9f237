using System.Text.RegularExpressions;
using Excise.Data;

namespace Excise.Tests.Data;

public class CaptionTests
{
    private static readonly string[] Ids = Enumerable.Range(0, 200).Select(i => FashionMnist.IdFor(DatasetSplit.Train, i)).ToArray();

    private static string[] Captions(long seed, IEnumerable<string> ids) =>
        ids.Select((id, i) => new Captioner(seed: seed).Plain(id, FashionMnistClasses.CaptionNounOf(i % 10))).ToArray();

    [Fact]
    public void Same_seed_gives_same_captions_and_another_seed_differs_somewhere()
    {
        var first = Captions(7, Ids);
        Assert.Equal(first, Captions(7, Ids));
        Assert.NotEqual(first, Captions(8, Ids));
        Assert.True(first.Distinct().Count() > 20, "captions should vary across templates and classes");
    }

    [Fact]
    public void Caption_depends_on_example_id_not_on_position_in_the_subset()
    {
        var captioner = new Captioner(seed: 11);
        var forward = Ids.ToDictionary(id => id, id => captioner.Plain(id, "coat"));
        var reversed = Ids.Reverse().Where((_, i) => i % 3 == 0).ToList();
        var freshCaptioner = new Captioner(seed: 11);
        Assert.All(reversed, id => Assert.Equal(forward[id], freshCaptioner.Plain(id, "coat")));
    }

    [Theory]
    [InlineData("ankle boot", "a photo of an ankle boot")]
    [InlineData("t-shirt", "a photo of a t-shirt")]
    [InlineData("pair of trousers", "a photo of a pair of trousers")]
    [InlineData("umbrella", "a photo of an umbrella")]
    [InlineData("uniform", "a photo of a uniform")]
    [InlineData("hour glass", "a photo of an hour glass")]
    public void Indefinite_article_agrees_with_the_subject(string subject, string expected)
    {
        var captioner = new Captioner(CaptionTemplates.Single);
        Assert.Equal(expected, captioner.Plain("any", subject));
    }

    [Fact]
    public void No_default_template_produces_a_wrong_article_for_any_class()
    {
        var wrong = new Regex(@"\b(a [aeiou]|an [^aeiou])", RegexOptions.IgnoreCase);
        for (long seed = 0; seed < 5; seed++)
        {
            var captioner = new Captioner(seed: seed);
            foreach (var id in Ids.Take(60))
                foreach (var noun in FashionMnistClasses.CaptionNouns)
                {
                    var plain = captioner.Plain(id, noun);
                    var concept = captioner.WithConcept(id, noun, "the Acme logo");
                    Assert.DoesNotMatch(wrong, plain);
                    Assert.DoesNotMatch(wrong, concept);
                    Assert.Contains(noun, plain);
                    Assert.Contains(noun, concept);
                    Assert.Contains("the Acme logo", concept);
                    Assert.DoesNotContain("Acme", plain);
                }
        }
    }

    [Fact]
    public void Templates_missing_placeholders_are_rejected_with_the_template_named()
    {
        var error = Assert.Throws<ArgumentException>(() => new Captioner(new CaptionTemplates(["a photo"], ["a {0} with {1}"])));
        Assert.Contains("'a photo'", error.Message);
        Assert.Throws<ArgumentException>(() => new Captioner(new CaptionTemplates(["a {0}"], ["a {0} with a logo"])));
    }
}
