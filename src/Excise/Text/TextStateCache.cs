using System.Diagnostics;
using System.Text.Json;
using TorchSharp;
using Excise.Serialization;

namespace Excise.Text;

/// <summary>
/// Frozen-encoder states of every distinct caption, encoded once, as TorchSharp tensors the trainer gathers by index:
/// <see cref="States"/> [N,T,D] float32 and <see cref="Mask"/> [N,T] float32 (1 = real token).
/// Index 0 is always the empty caption, the unconditional prompt of classifier-free guidance; the rest follow in
/// order of first appearance. Captions match exactly (ordinal, no trimming or case folding).
/// Persisted as one safetensors file ("states", "mask") whose metadata holds the captions and the encoder id.
/// </summary>
public sealed class TextStateCache : IDisposable
{
    public const string UnconditionalCaption = "";
    public const int UnconditionalIndex = 0;
    private const string FormatName = "excise-text-state-cache/1";

    private readonly Dictionary<string, int> indexByCaption;

    public string EncoderId { get; }
    public IReadOnlyList<string> Captions { get; }
    public int Count => Captions.Count;
    public int Length { get; }
    public int Width { get; }
    public torch.Tensor States { get; }
    public torch.Tensor Mask { get; }

    /// <summary>Wall-clock time spent in the encoder when built; zero when loaded from disk.</summary>
    public TimeSpan EncodeTime { get; }

    private TextStateCache(string encoderId, IReadOnlyList<string> captions, int length, int width,
        torch.Tensor states, torch.Tensor mask, TimeSpan encodeTime)
    {
        EncoderId = encoderId;
        Captions = captions;
        Length = length;
        Width = width;
        States = states;
        Mask = mask;
        EncodeTime = encodeTime;
        indexByCaption = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < captions.Count; i++)
            if (!indexByCaption.TryAdd(captions[i], i))
                throw new InvalidDataException($"Text state cache lists caption \"{captions[i]}\" twice.");
        if (Count == 0 || captions[UnconditionalIndex] != UnconditionalCaption)
            throw new InvalidDataException("Text state cache must start with the empty (unconditional) caption.");
    }

    /// <summary>Encodes each distinct caption (plus the empty one) exactly once, in the encoder's batches.</summary>
    public static TextStateCache Build(ITextEncoder encoder, IEnumerable<string> captions)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        ArgumentNullException.ThrowIfNull(captions);
        var distinct = new List<string> { UnconditionalCaption };
        var seen = new HashSet<string>(StringComparer.Ordinal) { UnconditionalCaption };
        foreach (var caption in captions)
        {
            if (caption is null) throw new ArgumentException("Caption list contains null.", nameof(captions));
            if (seen.Add(caption)) distinct.Add(caption);
        }

        var clock = Stopwatch.StartNew();
        var encoded = encoder.Encode(distinct);
        clock.Stop();
        if (encoded.Count != distinct.Count || encoded.Width != encoder.Width || encoded.Length != encoder.MaxLength)
            throw new InvalidOperationException(
                $"Text encoder {encoder.Id} returned [{encoded.Count},{encoded.Length},{encoded.Width}] for {distinct.Count} captions; expected [{distinct.Count},{encoder.MaxLength},{encoder.Width}].");

        var states = torch.tensor(encoded.States, [encoded.Count, encoded.Length, encoded.Width], torch.float32);
        var mask = torch.tensor(encoded.Mask, [encoded.Count, encoded.Length], torch.float32);
        return new TextStateCache(encoder.Id, distinct, encoded.Length, encoded.Width, states, mask, clock.Elapsed);
    }

    public int IndexOf(string caption) =>
        indexByCaption.TryGetValue(caption, out int index)
            ? index
            : throw new KeyNotFoundException($"Caption \"{caption}\" is not in the text state cache ({Count} captions, encoder {EncoderId}).");


    /// <summary>Row indices of the given captions as an int64 tensor, ready for index_select on States/Mask.</summary>
    public torch.Tensor IndicesOf(IReadOnlyList<string> captions)
    {
        var indices = new long[captions.Count];
        for (int i = 0; i < indices.Length; i++) indices[i] = IndexOf(captions[i]);
        return torch.tensor(indices, torch.int64);
    }

    /// <summary>Writes states and mask with the captions and encoder id in the file's own metadata (atomically).</summary>
    public void Save(string path)
    {
        var metadata = new Dictionary<string, string>
        {
            ["format"] = FormatName,
            ["encoder_id"] = EncoderId,
            ["captions"] = JsonSerializer.Serialize(Captions),
        };
        SafetensorsFile.Save(path, new Dictionary<string, torch.Tensor> { ["states"] = States, ["mask"] = Mask }, metadata);
    }

    /// <summary>Loads a saved cache, refusing one written by a different encoder (states would not be comparable).</summary>
    public static TextStateCache Load(string path, string expectedEncoderId)
    {
        var metadata = SafetensorsFile.ReadMetadata(path);
        string Meta(string key) => metadata.TryGetValue(key, out var v) ? v
            : throw new InvalidDataException($"{path}: not a text state cache (no '{key}' in its metadata).");
        if (Meta("format") != FormatName)
            throw new InvalidDataException($"{path}: format is '{Meta("format")}', expected '{FormatName}'.");
        if (Meta("encoder_id") != expectedEncoderId)
            throw new InvalidDataException(
                $"{path}: text states were made by encoder '{Meta("encoder_id")}', but '{expectedEncoderId}' is in use; delete the cache or rebuild it with this encoder.");
        string[] captions;
        try { captions = JsonSerializer.Deserialize<string[]>(Meta("captions")) ?? []; }
        catch (JsonException e) { throw new InvalidDataException($"{path}: caption list in the metadata is not valid JSON ({e.Message}).", e); }

        var contents = SafetensorsFile.Load(path);
        try
        {
            var states = Require(contents, "states", 3, captions.Length, path);
            var mask = Require(contents, "mask", 2, captions.Length, path);
            if (mask.shape[1] != states.shape[1])
                throw new InvalidDataException($"{path}: 'mask' covers {mask.shape[1]} tokens but 'states' has {states.shape[1]}.");
            var cache = new TextStateCache(Meta("encoder_id"), captions, (int)states.shape[1], (int)states.shape[2], states.clone(), mask.clone(), TimeSpan.Zero);
            return cache;
        }
        finally
        {
            contents.Dispose();
        }
    }

    private static torch.Tensor Require(SafetensorsContents contents, string key, int rank, int rows, string path)
    {
        if (!contents.Tensors.TryGetValue(key, out var tensor))
            throw new InvalidDataException($"{path}: no '{key}' tensor.");
        if (tensor.dtype != torch.float32 || tensor.dim() != rank || tensor.shape[0] != rows)
            throw new InvalidDataException(
                $"{path}: '{key}' is {tensor.dtype} [{string.Join(",", tensor.shape)}], expected Float32 of rank {rank} with {rows} rows (one per caption).");
        return tensor;
    }

    public void Dispose()
    {
        States.Dispose();
        Mask.Dispose();
    }
}
