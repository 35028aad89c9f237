using System.Diagnostics;
using System.Text.Json;
using TorchSharp;
using TorchSharp.PyBridge;

namespace Excise.Text;

/// <summary>
/// Frozen-encoder states of every distinct caption, encoded once, as TorchSharp tensors the trainer gathers by index:
/// <see cref="States"/> [N,T,D] float32 and <see cref="Mask"/> [N,T] float32 (1 = real token).
/// Index 0 is always the empty caption, the unconditional prompt of classifier-free guidance; the rest follow in
/// order of first appearance. Captions match exactly (ordinal, no trimming or case folding).
/// Persisted as a safetensors file ("states", "mask") plus a sidecar JSON (<see cref="SidecarPathFor"/>) holding
/// the captions and the encoder id, since TorchSharp.PyBridge writes no safetensors __metadata__.
/// </summary>
public sealed class TextStateCache : IDisposable
{
    public const string UnconditionalCaption = "";
    public const int UnconditionalIndex = 0;
    private const string FormatName = "excise-text-state-cache/1";

    private readonly Dictionary<string, int> _indexByCaption;

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
        _indexByCaption = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < captions.Count; i++)
            if (!_indexByCaption.TryAdd(captions[i], i))
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
        _indexByCaption.TryGetValue(caption, out int index)
            ? index
            : throw new KeyNotFoundException($"Caption \"{caption}\" is not in the text state cache ({Count} captions, encoder {EncoderId}).");

    public bool Contains(string caption) => _indexByCaption.ContainsKey(caption);

    /// <summary>Row indices of the given captions as an int64 tensor, ready for index_select on States/Mask.</summary>
    public torch.Tensor IndicesOf(IReadOnlyList<string> captions)
    {
        var indices = new long[captions.Count];
        for (int i = 0; i < indices.Length; i++) indices[i] = IndexOf(captions[i]);
        return torch.tensor(indices, torch.int64);
    }

    public static string SidecarPathFor(string safetensorsPath) => safetensorsPath + ".json";

    public void Save(string path)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory != null) Directory.CreateDirectory(directory);
        using (var stream = File.Create(path))
            Safetensors.SaveStateDict(stream, new Dictionary<string, torch.Tensor> { ["states"] = States, ["mask"] = Mask });
        var sidecar = new Sidecar(FormatName, EncoderId, Length, Width, Captions.ToArray());
        File.WriteAllText(SidecarPathFor(path), JsonSerializer.Serialize(sidecar, SidecarJson));
    }

    /// <summary>Loads a saved cache, refusing one written by a different encoder (states would not be comparable).</summary>
    public static TextStateCache Load(string path, string expectedEncoderId)
    {
        string sidecarPath = SidecarPathFor(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: text state cache not found.", path);
        if (!File.Exists(sidecarPath)) throw new FileNotFoundException($"{sidecarPath}: caption sidecar of text state cache {path} not found.", sidecarPath);

        var sidecar = JsonSerializer.Deserialize<Sidecar>(File.ReadAllText(sidecarPath), SidecarJson)
                      ?? throw new InvalidDataException($"{sidecarPath}: empty sidecar.");
        if (sidecar.Format != FormatName)
            throw new InvalidDataException($"{sidecarPath}: format is '{sidecar.Format}', expected '{FormatName}'.");
        if (sidecar.EncoderId != expectedEncoderId)
            throw new InvalidDataException(
                $"{path}: text states were made by encoder '{sidecar.EncoderId}', but '{expectedEncoderId}' is in use; delete the cache or rebuild it with this encoder.");

        var tensors = Safetensors.LoadStateDict(path);
        try
        {
            Require(tensors, "states", [sidecar.Captions.Length, sidecar.Length, sidecar.Width], path);
            Require(tensors, "mask", [sidecar.Captions.Length, sidecar.Length], path);
            var states = tensors["states"];
            var mask = tensors["mask"];
            tensors.Remove("states");
            tensors.Remove("mask");
            return new TextStateCache(sidecar.EncoderId, sidecar.Captions, sidecar.Length, sidecar.Width, states, mask, TimeSpan.Zero);
        }
        finally
        {
            foreach (var unused in tensors.Values) unused.Dispose();
        }
    }

    private static void Require(Dictionary<string, torch.Tensor> tensors, string key, long[] shape, string path)
    {
        if (!tensors.TryGetValue(key, out var tensor))
            throw new InvalidDataException($"{path}: no '{key}' tensor.");
        if (tensor.dtype != torch.float32 || !tensor.shape.SequenceEqual(shape))
            throw new InvalidDataException(
                $"{path}: '{key}' is {tensor.dtype} [{string.Join(",", tensor.shape)}], expected Float32 [{string.Join(",", shape)}].");
    }

    private static readonly JsonSerializerOptions SidecarJson = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    private sealed record Sidecar(string Format, string EncoderId, int Length, int Width, string[] Captions);

    public void Dispose()
    {
        States.Dispose();
        Mask.Dispose();
    }
}
