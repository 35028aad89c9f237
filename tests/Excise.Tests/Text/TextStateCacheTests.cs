using Excise.Text;
using TorchSharp;

namespace Excise.Tests.Text;

[Collection(MiniLmCollection.Name)]
public class TextStateCacheTests(MiniLmFixture fixture) : IDisposable
{
    private readonly string directory = Directory.CreateTempSubdirectory("excise-text-cache-").FullName;

    private static readonly string[] FashionCaptions =
    [
        "a photo of a sneaker", "a photo of a dress", "a photo of a sneaker", "a photo of a bag",
        "a photo of a dress", "a photo of a sneaker", "a photo of an ankle boot",
    ];

    /// <summary>Passes through to the real encoder and records what it was asked to encode.</summary>
    private sealed class CountingEncoder(ITextEncoder inner) : ITextEncoder
    {
        public List<IReadOnlyList<string>> Calls { get; } = [];
        public string Id => inner.Id;
        public int Width => inner.Width;
        public int MaxLength => inner.MaxLength;
        public ITokenizer Tokenizer => inner.Tokenizer;

        public TextStates Encode(IReadOnlyList<string> texts)
        {
            Calls.Add(texts.ToArray());
            return inner.Encode(texts);
        }

        public void Dispose() { }
    }

    [Fact]
    public void Build_encodes_each_distinct_caption_once_with_the_empty_caption_first()
    {
        var counting = new CountingEncoder(fixture.Encoder);
        using var cache = TextStateCache.Build(counting, FashionCaptions);

        var call = Assert.Single(counting.Calls);
        Assert.Equal(["", "a photo of a sneaker", "a photo of a dress", "a photo of a bag", "a photo of an ankle boot"], call);
        Assert.Equal(call, cache.Captions);
        Assert.Equal(new long[] { 5, 16, 384 }, cache.States.shape);
        Assert.Equal(new long[] { 5, 16 }, cache.Mask.shape);
        Assert.Equal(torch.float32, cache.States.dtype);
        Assert.Equal(0, cache.IndexOf(TextStateCache.UnconditionalCaption));
    }

    [Fact]
    public void IndexOf_points_at_the_row_the_encoder_gives_for_that_caption()
    {
        using var cache = TextStateCache.Build(fixture.Encoder, FashionCaptions);
        int dress = cache.IndexOf("a photo of a dress");

        Assert.Equal(2, dress);
        Assert.Equal(dress, cache.IndexOf("a photo of a dress"));
        var direct = fixture.Encoder.Encode(["a photo of a dress"]);
        float[] row = cache.States[dress].data<float>().ToArray();
        float maxDifference = row.Zip(direct.States, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(maxDifference < 1e-5f, $"max difference {maxDifference}");
        Assert.Equal(direct.Mask, cache.Mask[dress].data<float>().ToArray());
        Assert.Equal([2L, 0, 2], cache.IndicesOf(["a photo of a dress", "", "a photo of a dress"]).data<long>().ToArray());
        Assert.Throws<KeyNotFoundException>(() => cache.IndexOf("a photo of a shirt"));
    }

    [Fact]
    public void Save_then_load_round_trips_bit_exactly()
    {
        string path = Path.Combine(directory, "states.safetensors");
        using var built = TextStateCache.Build(fixture.Encoder, FashionCaptions);
        built.Save(path);

        using var loaded = TextStateCache.Load(path, fixture.Encoder.Id);

        Assert.Equal(built.Captions, loaded.Captions);
        Assert.Equal(built.EncoderId, loaded.EncoderId);
        Assert.Equal(built.States.bytes.ToArray(), loaded.States.bytes.ToArray());
        Assert.Equal(built.Mask.bytes.ToArray(), loaded.Mask.bytes.ToArray());
        Assert.Equal(built.IndexOf("a photo of a bag"), loaded.IndexOf("a photo of a bag"));
    }

    [Fact]
    public void Load_with_another_encoder_id_fails_naming_both_encoders()
    {
        string path = Path.Combine(directory, "states.safetensors");
        using (var built = TextStateCache.Build(fixture.Encoder, ["a photo of a bag"])) built.Save(path);

        var error = Assert.Throws<InvalidDataException>(() => TextStateCache.Load(path, "openai/clip-vit-base-patch32 (onnx, max_length=77)"));

        Assert.Contains(fixture.Encoder.Id, error.Message);
        Assert.Contains("openai/clip-vit-base-patch32", error.Message);
        Assert.Contains(path, error.Message);
    }

    [Fact]
    public void Load_of_a_plain_safetensors_file_fails_saying_it_is_not_a_cache()
    {
        string path = Path.Combine(directory, "plain.safetensors");
        using (var states = torch.zeros(1, 4, 384))
            Excise.Serialization.SafetensorsFile.Save(path, new Dictionary<string, torch.Tensor> { ["states"] = states });

        var error = Assert.Throws<InvalidDataException>(() => TextStateCache.Load(path, fixture.Encoder.Id));
        Assert.Contains(path, error.Message);
        Assert.Contains("not a text state cache", error.Message);
    }

    public void Dispose() => Directory.Delete(directory, recursive: true);
}
