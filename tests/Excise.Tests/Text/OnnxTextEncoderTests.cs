using Excise.Text;

namespace Excise.Tests.Text;

[Collection(MiniLmCollection.Name)]
public class OnnxTextEncoderTests(MiniLmFixture fixture)
{
    private readonly OnnxTextEncoder encoder = fixture.Encoder;

    [Fact]
    public void Describes_the_MiniLM_model()
    {
        Assert.Equal("sentence-transformers/all-MiniLM-L6-v2 (onnx, max_length=16)", encoder.Id);
        Assert.Equal(384, encoder.Width);
        Assert.Equal(16, encoder.MaxLength);
    }

    [Fact]
    public void Encode_gives_count_by_max_length_by_width_states_and_the_attention_mask()
    {
        var states = encoder.Encode(["a photo of a sneaker", "a dress"]);

        Assert.Equal((2, 16, 384), (states.Count, states.Length, states.Width));
        Assert.Equal(2 * 16 * 384, states.States.Length);
        float[] expectedMask = [.. Enumerable.Repeat(1f, 8), .. Enumerable.Repeat(0f, 8), .. Enumerable.Repeat(1f, 4), .. Enumerable.Repeat(0f, 12)];
        Assert.Equal(expectedMask, states.Mask);
        Assert.All(states.States, value => Assert.True(float.IsFinite(value)));
    }

    [Fact]
    public void Empty_list_gives_no_rows()
    {
        var states = encoder.Encode([]);
        Assert.Equal(0, states.Count);
        Assert.Empty(states.States);
    }

    [Fact]
    public void Same_caption_is_bit_identical_across_calls_and_within_float_noise_across_batch_positions()
    {
        const string caption = "a photo of a sneaker";
        var alone = encoder.Encode([caption]);
        var again = encoder.Encode([caption]);
        Assert.Equal(alone.States, again.States);

        // 11 texts with batch size 8: the caption sits in two different batches, at different positions, beside different texts.
        string[] crowd = ["a bag", caption, "a long sentence about a pullover with stripes", "x", "a coat", "a shirt",
            "a sandal", "a trouser", caption, "an ankle boot", "a t-shirt"];
        var batched = encoder.Encode(crowd);
        foreach (int row in new[] { 1, 8 })
        {
            Assert.Equal(alone.MaskOf(0).ToArray(), batched.MaskOf(row).ToArray());
            var expected = alone.StatesOf(0);
            var actual = batched.StatesOf(row);
            float maxDifference = 0;
            for (int i = 0; i < expected.Length; i++)
                maxDifference = Math.Max(maxDifference, Math.Abs(expected[i] - actual[i]));
            Assert.True(maxDifference < 1e-5f, $"row {row} differs by {maxDifference}");
        }
    }

    [Fact]
    public void Different_captions_have_different_states()
    {
        var states = encoder.Encode(["a photo of a sneaker", "a photo of a sandal"]);

        // Position 5 holds "sneak" vs "sandal": the token itself and, through attention, every other position differ.
        float difference = 0;
        var first = states.StatesOf(0);
        var second = states.StatesOf(1);
        for (int i = 0; i < first.Length; i++) difference += Math.Abs(first[i] - second[i]);
        Assert.True(difference / first.Length > 0.01f, $"mean |difference| {difference / first.Length}");
    }

    [Fact]
    public void Mean_pooled_embeddings_put_paraphrases_closer_than_different_objects()
    {
        var states = encoder.Encode(["a photo of a sneaker", "a picture of a sneaker", "a photo of a dress"]);
        var sneaker = states.MaskedMean(0);

        float paraphrase = Cosine(sneaker, states.MaskedMean(1));
        float otherObject = Cosine(sneaker, states.MaskedMean(2));

        Assert.True(paraphrase > otherObject + 0.05f, $"cos(paraphrase)={paraphrase}, cos(other object)={otherObject}");
    }

    [Fact]
    public void Truncation_policies_warn_throw_or_stay_quiet()
    {
        const string longCaption = "a photo of a red leather sneaker with white laces standing on a wooden floor";
        var warnings = new List<string>();
        using (var warning = MiniLmTextEncoder.Create(new TextEncoderOptions(MaxLength: 8, Warn: warnings.Add)))
        {
            var states = warning.Encode([longCaption, "a bag"]);
            Assert.Equal(8, states.Length);
            Assert.Single(warnings);
            Assert.Contains("kept only \"a photo of a red leather\"", warnings[0]);
            Assert.Equal(1, warning.TruncatedTextCount);
        }
        using (var strict = MiniLmTextEncoder.Create(new TextEncoderOptions(MaxLength: 8, Truncation: TruncationPolicy.Throw)))
        {
            var error = Assert.Throws<ArgumentException>(() => strict.Encode([longCaption]));
            Assert.Contains(longCaption, error.Message);
        }
    }

    private static float Cosine(float[] a, float[] b)
    {
        double dot = 0, aa = 0, bb = 0;
        for (int i = 0; i < a.Length; i++) { dot += a[i] * b[i]; aa += a[i] * a[i]; bb += b[i] * b[i]; }
        return (float)(dot / Math.Sqrt(aa * bb));
    }
}
