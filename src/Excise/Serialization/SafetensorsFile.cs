using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Serialization;

public sealed record SafetensorsEntry(string Name, ScalarType DType, long[] Shape, long Begin, long End);

/// <summary>The tensors of a safetensors file, in file order, plus its string metadata.</summary>
public sealed class SafetensorsContents : IDisposable
{
    public required IReadOnlyList<string> Names { get; init; }
    public required IReadOnlyDictionary<string, Tensor> Tensors { get; init; }
    public required IReadOnlyDictionary<string, string> Metadata { get; init; }
    public Tensor this[string name] => Tensors.TryGetValue(name, out var t) ? t
        : throw new KeyNotFoundException($"Tensor '{name}' is not in the file.");
    public void Dispose() { foreach (var t in Tensors.Values) t.Dispose(); }
}

/// <summary>
/// Reader and writer for the safetensors format (8-byte little-endian header length, JSON header, raw
/// little-endian payload). The reader validates the header before allocating anything, so a corrupt or
/// hostile file fails with a message naming the file instead of crashing or allocating absurd memory.
/// Files are written atomically.
/// </summary>
public static class SafetensorsFile
{
    /// <summary>The reference implementation's cap: no real header comes near it, and it bounds what a hostile length can make us allocate.</summary>
    public const long MaxHeaderBytes = 100L << 20;
    /// <summary>Far above any real tensor's rank; keeps a hostile shape list from reaching libtorch.</summary>
    public const int MaxDimensions = 32;

    static readonly Dictionary<string, (ScalarType Type, int Size)> DTypes = new()
    {
        ["F64"] = (ScalarType.Float64, 8), ["F32"] = (ScalarType.Float32, 4), ["F16"] = (ScalarType.Float16, 2),
        ["BF16"] = (ScalarType.BFloat16, 2), ["I64"] = (ScalarType.Int64, 8), ["I32"] = (ScalarType.Int32, 4),
        ["I16"] = (ScalarType.Int16, 2), ["I8"] = (ScalarType.Int8, 1), ["U8"] = (ScalarType.Byte, 1),
        ["BOOL"] = (ScalarType.Bool, 1),
    };

    static string DTypeName(ScalarType t) => DTypes.FirstOrDefault(kv => kv.Value.Type == t).Key
        ?? throw new NotSupportedException($"dtype {t} cannot be stored in safetensors.");

    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.ToList();
        var duplicate = list.GroupBy(kv => kv.Key).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new ArgumentException($"Duplicate tensor name '{duplicate.Key}' when writing {path}.");

        using var header = new MemoryStream();
        using (var json = new Utf8JsonWriter(header))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) json.WriteString(k, v);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, t) in list)
            {
                long bytes = t.NumberOfElements * t.ElementSize;
                json.WriteStartObject(name);
                json.WriteString("dtype", DTypeName(t.dtype));
                json.WriteStartArray("shape");
                foreach (var d in t.shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes;
            }
            json.WriteEndObject();
        }
        // Pad the header with spaces to a multiple of 8 so the payload is aligned, as the reference writer does.
        while (header.Length % 8 != 0) header.WriteByte((byte)' ');

        AtomicFile.Write(path, stream =>
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
            stream.Write(len);
            header.Position = 0;
            header.CopyTo(stream);
            foreach (var (_, t) in list)
            {
                using var cpu = t.detach().cpu().contiguous();
                stream.Write(cpu.bytes);
            }
        });
    }

    public static IReadOnlyList<SafetensorsEntry> ReadHeader(string path) => ReadHeader(path, out _, out _);

    static InvalidDataException Pickle(string path, string format) => new(
        $"{path} is a {format}, not safetensors. Excise does not load pickles: unpickling can run arbitrary code. If you trust the file, " +
        $"convert it once with 'excise convert --from {path} --to model.safetensors --allow-pickle', or in a trusted Python environment " +
        "(safetensors.torch.save_file(torch.load(f, weights_only=True), 'model.safetensors')), and pass the .safetensors file.");

    /// <summary>Recognises PyTorch's pickle formats by their first bytes: the zip container of torch.save, or a bare pickle.</summary>
    static string? PickleFormat(ReadOnlySpan<byte> start) =>
        start[0] == (byte)'P' && start[1] == (byte)'K' && start[2] == 3 && start[3] == 4 ? "PyTorch zip checkpoint (torch.save: .pt/.pth/.ckpt/.bin, pickled)"
        : start[0] == 0x80 && start[1] is >= 2 and <= 5 ? "Python pickle (protocol " + start[1] + ")"
        : null;

    static IReadOnlyList<SafetensorsEntry> ReadHeader(string path, out Dictionary<string, string> metadata, out long payloadStart)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Safetensors file not found: {path}", path);
        using var stream = File.OpenRead(path);
        long fileLength = stream.Length;
        if (fileLength < 8) throw Corrupt(path, $"only {fileLength} bytes; a safetensors file starts with an 8-byte header length");
        Span<byte> len = stackalloc byte[8];
        stream.ReadExactly(len);
        var magic = PickleFormat(len);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(len);
        if (headerLength > (ulong)(fileLength - 8)) throw magic is not null ? Pickle(path, magic) : Corrupt(path, $"header length {headerLength} runs past the end of the file ({fileLength} bytes)");
        if (headerLength > MaxHeaderBytes) throw magic is not null ? Pickle(path, magic) : Corrupt(path, $"header of {headerLength} bytes exceeds the {MaxHeaderBytes >> 20} MiB limit");
        var headerBytes = new byte[headerLength];
        stream.ReadExactly(headerBytes);
        payloadStart = 8 + (long)headerLength;
        long payloadLength = fileLength - payloadStart;

        // System.Text.Json checks UTF-8 only when a string is read, and then throws InvalidOperationException: check it here.
        if (!Utf8.IsValid(headerBytes)) throw magic is not null ? Pickle(path, magic) : Corrupt(path, "header is not valid UTF-8");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(headerBytes); }
        catch (JsonException e) { throw magic is not null ? Pickle(path, magic) : Corrupt(path, $"header is not valid JSON ({e.Message})"); }
        using var _ = doc;
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Corrupt(path, "header is not a JSON object");

        metadata = new Dictionary<string, string>();
        var entries = new List<SafetensorsEntry>();
        var seen = new HashSet<string>();
        // JSON allows duplicate keys and System.Text.Json keeps them all; which one wins would be up to the reader, so refuse them.
        foreach (var prop in doc.RootElement.EnumerateObject())
        {
            if (!seen.Add(prop.Name)) throw Corrupt(path, $"tensor '{prop.Name}' is listed twice");
            if (prop.Name == "__metadata__")
            {
                if (prop.Value.ValueKind != JsonValueKind.Object) throw Corrupt(path, "__metadata__ is not an object");
                foreach (var m in prop.Value.EnumerateObject())
                {
                    if (m.Value.ValueKind != JsonValueKind.String) throw Corrupt(path, $"__metadata__ value '{m.Name}' is not a string");
                    if (!metadata.TryAdd(m.Name, m.Value.GetString()!)) throw Corrupt(path, $"__metadata__ key '{m.Name}' is listed twice");
                }
                continue;
            }
            entries.Add(ParseEntry(path, prop, payloadLength));
        }
        RequireTiledPayload(path, entries, payloadLength);
        return entries;
    }

    /// <summary>
    /// As the reference implementation requires: the tensors' byte ranges, sorted, follow each other without overlap
    /// or gap and end exactly at the end of the file, so every payload byte belongs to exactly one tensor.
    /// </summary>
    static void RequireTiledPayload(string path, IReadOnlyList<SafetensorsEntry> entries, long payloadLength)
    {
        long expectedBegin = 0;
        SafetensorsEntry? previous = null;
        foreach (var entry in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (entry.Begin < expectedBegin)
                throw Corrupt(path, $"tensors '{previous!.Name}' and '{entry.Name}' overlap (bytes [{previous.Begin}, {previous.End}] and [{entry.Begin}, {entry.End}])");
            if (entry.Begin > expectedBegin)
                throw Corrupt(path, $"payload bytes [{expectedBegin}, {entry.Begin}] before tensor '{entry.Name}' belong to no tensor");
            expectedBegin = entry.End;
            previous = entry;
        }
        if (expectedBegin != payloadLength)
            throw Corrupt(path, $"the tensors end at payload byte {expectedBegin} but the payload has {payloadLength} bytes (truncated, or extra bytes appended)");
    }

    static SafetensorsEntry ParseEntry(string path, JsonProperty prop, long payloadLength)
    {
        var v = prop.Value;
        if (v.ValueKind != JsonValueKind.Object) throw Corrupt(path, $"entry '{prop.Name}' is not an object with dtype, shape and data_offsets");
        var fields = new HashSet<string>();
        foreach (var field in v.EnumerateObject())
            if (!fields.Add(field.Name)) throw Corrupt(path, $"entry '{prop.Name}' lists '{field.Name}' twice");
        if (!v.TryGetProperty("dtype", out var dtypeEl) || dtypeEl.ValueKind != JsonValueKind.String
            || !v.TryGetProperty("shape", out var shapeEl) || shapeEl.ValueKind != JsonValueKind.Array
            || !v.TryGetProperty("data_offsets", out var offEl) || offEl.ValueKind != JsonValueKind.Array || offEl.GetArrayLength() != 2)
            throw Corrupt(path, $"entry '{prop.Name}' needs dtype, shape and data_offsets [begin, end]");
        var dtypeName = dtypeEl.GetString()!;
        if (!DTypes.TryGetValue(dtypeName, out var dtype)) throw Corrupt(path, $"tensor '{prop.Name}' has unsupported dtype '{dtypeName}'");
        if (shapeEl.GetArrayLength() > MaxDimensions)
            throw Corrupt(path, $"tensor '{prop.Name}' has {shapeEl.GetArrayLength()} dimensions (at most {MaxDimensions} are supported)");
        var shape = new long[shapeEl.GetArrayLength()];
        long count = 1;
        int i = 0;
        foreach (var d in shapeEl.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out var dim) || dim < 0)
                throw Corrupt(path, $"tensor '{prop.Name}' has an invalid dimension {d.GetRawText()} (dimensions are non-negative integers)");
            shape[i++] = dim;
            count = dim == 0 || count == 0 ? 0 : (count > long.MaxValue / dim ? throw ImpossiblyLarge(path, prop.Name, shapeEl) : count * dim);
        }
        if (count > long.MaxValue / dtype.Size) throw ImpossiblyLarge(path, prop.Name, shapeEl);
        long bytes = count * dtype.Size;
        var offsets = offEl.EnumerateArray().Select(o => o.ValueKind == JsonValueKind.Number && o.TryGetInt64(out var x) ? x : -1).ToArray();
        long begin = offsets[0], end = offsets[1];
        if (begin < 0 || end < begin || end > payloadLength)
            throw Corrupt(path, $"tensor '{prop.Name}' has data offsets [{offEl[0].GetRawText()}, {offEl[1].GetRawText()}] outside the {payloadLength}-byte payload");
        if (end - begin != bytes)
            throw Corrupt(path, $"tensor '{prop.Name}' has {end - begin} bytes but shape [{string.Join(", ", shape)}] of {dtypeName} needs {bytes}");
        return new SafetensorsEntry(prop.Name, dtype.Type, shape, begin, end);
    }

    static InvalidDataException ImpossiblyLarge(string path, string name, JsonElement shape) =>
        Corrupt(path, $"tensor '{name}' has shape {shape.GetRawText()}, whose size overflows 64 bits");

    public static SafetensorsContents Load(string path, Func<string, bool>? include = null)
    {
        var entries = ReadHeader(path, out var metadata, out long payloadStart);
        var tensors = new Dictionary<string, Tensor>();
        var names = new List<string>();
        try
        {
            using var stream = File.OpenRead(path);
            foreach (var e in entries)
            {
                if (include is not null && !include(e.Name)) continue;
                var t = empty(e.Shape, dtype: e.DType);
                tensors[e.Name] = t;
                names.Add(e.Name);
                if (e.End == e.Begin) continue;
                stream.Position = payloadStart + e.Begin;
                try { stream.ReadExactly(t.bytes); }
                catch (EndOfStreamException) { throw Corrupt(path, $"the file ended while reading tensor '{e.Name}' (it changed while being read)"); }
                // libtorch assumes a bool is stored as 0 or 1; other bytes are undefined behaviour in its kernels.
                if (e.DType == ScalarType.Bool && t.bytes.IndexOfAnyExcept((byte)0, (byte)1) >= 0)
                    throw Corrupt(path, $"BOOL tensor '{e.Name}' holds bytes other than 0 and 1");
            }
        }
        catch
        {
            foreach (var t in tensors.Values) t.Dispose();
            throw;
        }
        return new SafetensorsContents { Names = names, Tensors = tensors, Metadata = metadata };
    }

    public static IReadOnlyDictionary<string, string> ReadMetadata(string path)
    {
        ReadHeader(path, out var metadata, out _);
        return metadata;
    }

    static InvalidDataException Corrupt(string path, string what) =>
        new($"{path}: not a valid safetensors file: {what}.");
}
