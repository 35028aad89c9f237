using Excise.Text;
using TorchSharp;

namespace Excise.Tests.Text;

/// <summary>The words a caption shares with its scrubbed form are re-stated from it; the concept's own words keep theirs.</summary>
[Collection(MiniLmCollection.Name)]
public class SharedTokenStatesTests(MiniLmFixture fixture)
{
    const string Named = "a photo of a bag with the Acme logo", Scrubbed = "a photo of a bag", Plain = "a photo of a dress";

    [Fact]
    public void Shared_words_take_the_scrubbed_captions_states_and_the_concepts_words_keep_their_own()
    {
        var encoder = fixture.Encoder;
        using var cache = TextStateCache.Build(encoder, [Named, Plain]);
        using var before = cache.States.clone();
        var alone = encoder.Encode([Named, Scrubbed, Plain]);

        int replaced = SharedTokenStates.ReplaceWithContext(cache, encoder, new Dictionary<string, string> { [Named] = Scrubbed });

        // [CLS] a photo of a bag | with the ac ##me logo | [SEP]: six shared tokens at the start, one at the end.
        var tokens = encoder.Tokenizer.Tokenize(Named, encoder.MaxLength);
        Assert.Equal(["[CLS]", "a", "photo", "of", "a", "bag", "with", "the", "ac", "##me", "logo", "[SEP]"], tokens.Tokens.Take(tokens.RealLength));
        Assert.Equal(7, replaced);
        var row = cache.States[cache.IndexOf(Named)];
        for (int t = 0; t < 6; t++) AssertState(alone, 1, t, row[t]);
        for (int t = 6; t < 11; t++) AssertState(alone, 0, t, row[t]);
        AssertState(alone, 1, 6, row[11]); // the scrubbed caption's [SEP]
        // The contextual encoder did spread the concept: "bag" reads differently beside "the Acme logo", and no longer does.
        Assert.True((before[cache.IndexOf(Named), 5] - row[5]).abs().max().ToSingle() > 1e-2f);
        // Captions without the concept, and the unconditional caption, are untouched.
        Assert.True(before[cache.IndexOf(Plain)].equal(cache.States[cache.IndexOf(Plain)]).all().ToBoolean());
        Assert.True(before[TextStateCache.UnconditionalIndex].equal(cache.States[TextStateCache.UnconditionalIndex]).all().ToBoolean());
    }

    static void AssertState(TextStates encoded, int text, int position, torch.Tensor actual)
    {
        var expected = encoded.StatesOf(text).Slice(position * encoded.Width, encoded.Width).ToArray();
        Assert.Equal(expected, actual.data<float>().ToArray());
    }
}
