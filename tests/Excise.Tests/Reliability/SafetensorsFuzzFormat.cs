using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using Excise.Projection;
using Excise.Serialization;
using static TorchSharp.torch;

namespace Excise.Tests.Reliability;

/// <summary>
/// Safetensors files written by our own writer, read back three ways: into a module by name and shape
/// (<see cref="ModuleWeights"/>), as raw tensors of every dtype pushed through a libtorch kernel, and as a concept basis.
/// </summary>
public sealed class SafetensorsFuzzFormat : FuzzFormat
{
    const string ModuleSeed = "module weights", MixedSeed = "every dtype", BasisSeed = "concept basis";
    static readonly string[] DTypeNames = ["F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL", "F8_E4M3", "C64", "U64", "f32", "", "F32 "];

    readonly Dictionary<string, byte[]> seeds = new();
    readonly Dictionary<string, Tensor> moduleTensors;
    readonly nn.Module<Tensor, Tensor> module = SmallModule();

    public SafetensorsFuzzFormat(string workspace) : base(workspace)
    {
        // Deterministic values (not the global generator), so the seed files are the same on every run.
        moduleTensors = SmallModule().state_dict().ToDictionary(kv => kv.Key, kv => linspace(-1, 1, kv.Value.NumberOfElements).reshape(kv.Value.shape));
        seeds[ModuleSeed] = WriteAndRead(moduleTensors, new Dictionary<string, string> { ["step"] = "7" });

        var mixed = new Dictionary<string, Tensor>
        {
            ["f32"] = arange(6, dtype: ScalarType.Float32).reshape(2, 3),
            ["f64"] = tensor(new[] { 1.5, -2.25 }),
            ["f16"] = arange(4, dtype: ScalarType.Float16),
            ["bf16"] = arange(3, dtype: ScalarType.BFloat16),
            ["i64"] = tensor(new long[] { long.MinValue, long.MaxValue }),
            ["i32"] = tensor(new[] { 3, -4 }).reshape(1, 2),
            ["i16"] = tensor(new short[] { 5, 6 }),
            ["i8"] = tensor(new sbyte[] { -1, 0, 1 }),
            ["u8"] = tensor(new byte[] { 0, 1, 2, 254, 255 }),
            ["bool"] = tensor(new[] { true, false, true, false }),
            ["scalar"] = tensor(3.5f),
            ["empty"] = zeros(0, 3),
        };
        seeds[MixedSeed] = WriteAndRead(mixed, new Dictionary<string, string> { ["format"] = "fuzz", ["note"] = "ünïcode" });

        using var random = randn(16, 2, dtype: ScalarType.Float64, generator: new Generator(3));
        var (q, _) = linalg.qr(random);
        var info = new ConceptBasisInfo(["the Acme logo"], ["a photo of the Acme logo"], "fuzz encoder", SubspaceMode.ConceptTokens, 0.99, 2, [2.0, 1.0], 10, 8);
        using (var basis = new ConceptBasis(q, info)) basis.Save(SeedPath(BasisSeed));
        seeds[BasisSeed] = File.ReadAllBytes(SeedPath(BasisSeed));
    }

    public override string Name => "safetensors";
    public override IReadOnlyList<Type> RejectionTypes { get; } = [typeof(InvalidDataException)];
    public override IReadOnlyList<string> MessageMustName(FuzzCase input) => [input.FileName];

    static nn.Module<Tensor, Tensor> SmallModule() => nn.Sequential(("embed", nn.Linear(4, 3)), ("norm", nn.LayerNorm(3)), ("head", nn.Linear(3, 2)));

    string SeedPath(string seed) => Path.Combine(Workspace, "seed-" + seed.Replace(' ', '-') + ".safetensors");

    byte[] WriteAndRead(IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string> metadata, string? path = null)
    {
        path ??= Path.Combine(Workspace, "scratch.safetensors");
        SafetensorsFile.Save(path, tensors, metadata);
        return File.ReadAllBytes(path);
    }

    public override IEnumerable<FuzzCase> Seeds() => seeds.Select(kv => new FuzzCase(kv.Key, "none", FileFor(kv.Key), kv.Value));

    static string FileFor(string seed) => seed switch { ModuleSeed => "model.safetensors", MixedSeed => "tensors.safetensors", _ => "concept.safetensors" };

    public override FuzzCase Next(Random random)
    {
        var seed = random.Pick(seeds.Keys.ToList());
        var bytes = seeds[seed];
        var (mutated, what) = random.Next(10) switch
        {
            < 3 => Generic(bytes, random),
            3 => EditHeaderLength(bytes, random),
            4 or 5 or 6 => EditHeader(bytes, random),
            7 => EditPayload(bytes, random),
            8 when seed == ModuleSeed => MismatchTheModel(random),
            _ => EditHeader(bytes, random),
        };
        if (random.Next(8) == 0)
        {
            var (again, more) = Mutations.AnyGeneric(mutated, random);
            (mutated, what) = (again, what + "; " + more);
        }
        return new FuzzCase(seed, what, FileFor(seed), mutated);
    }

    string PathOf(FuzzCase input) => Path.Combine(Workspace, input.FileName);

    public override void Write(FuzzCase input) => File.WriteAllBytes(PathOf(input), input.Bytes);

    public override IReadOnlyList<FuzzLoader> Loaders(FuzzCase input) => input.Seed switch
    {
        ModuleSeed => [new("ModuleWeights.Load", () => ModuleWeights.Load(module, PathOf(input)))],
        MixedSeed => [new("SafetensorsFile.Load", () => LoadAndSum(PathOf(input)))],
        _ => [new("ConceptBasis.Load", () => { using (ConceptBasis.Load(PathOf(input))) { } })],
    };

    static void LoadAndSum(string path)
    {
        using var contents = SafetensorsFile.Load(path);
        foreach (var t in contents.Tensors.Values)
        {
            // Push every tensor through a kernel, so the bytes libtorch reads (bools, NaN patterns) are exercised.
            using var total = t.to_type(ScalarType.Float64).sum();
            _ = total.ToDouble();
        }
    }

    static (byte[] Header, byte[] Payload, ulong DeclaredLength) Split(byte[] file)
    {
        ulong declared = BinaryPrimitives.ReadUInt64LittleEndian(file);
        int length = (int)declared;
        return (file[8..(8 + length)], file[(8 + length)..], declared);
    }

    static byte[] Join(byte[] header, byte[] payload, ulong? declaredLength = null, bool pad = true)
    {
        var padded = pad ? [.. header, .. Enumerable.Repeat((byte)' ', (8 - header.Length % 8) % 8)] : header;
        var length = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, declaredLength ?? (ulong)padded.Length);
        return [.. length, .. padded, .. payload];
    }

    static (byte[], string) EditHeaderLength(byte[] file, Random random)
    {
        var (header, payload, declared) = Split(file);
        ulong[] candidates =
        [
            0, 1, 7, declared - 1, declared + 1, (ulong)file.Length - 8, (ulong)file.Length - 7, (ulong)file.Length,
            (ulong)SafetensorsFile.MaxHeaderBytes, (ulong)SafetensorsFile.MaxHeaderBytes + 1, 1UL << 63, ulong.MaxValue,
            (ulong)random.NextInt64(), 0x0280, 0x0480,
        ];
        var value = random.Pick(candidates);
        return (Join(header, payload, value, pad: false), $"header length {declared} → {value}");
    }

    static (byte[], string) EditPayload(byte[] file, Random random)
    {
        var (header, payload, _) = Split(file);
        switch (random.Next(3))
        {
            case 0:
                int cut = 1 + random.Next(Math.Max(1, payload.Length));
                return (Join(header, payload[..Math.Max(0, payload.Length - cut)], pad: false), $"payload shortened by {cut}");
            case 1:
                var extra = new byte[1 + random.Next(64)];
                random.NextBytes(extra);
                return (Join(header, [.. payload, .. extra], pad: false), $"payload extended by {extra.Length}");
            default:
                var flipped = (byte[])payload.Clone();
                if (flipped.Length > 0) flipped[random.Next(flipped.Length)] = (byte)random.Next(256);
                return (Join(header, flipped, pad: false), "payload byte changed");
        }
    }

    static (byte[], string) EditHeader(byte[] file, Random random)
    {
        var (header, payload, _) = Split(file);
        var root = JsonNode.Parse(header)!.AsObject();
        var tensors = root.Where(kv => kv.Key != "__metadata__").Select(kv => kv.Key).ToList();
        string name = random.Pick(tensors);
        var entry = root[name]!.AsObject();
        string what;
        switch (random.Next(8))
        {
            case 0:
                var dtype = random.Pick(DTypeNames);
                entry["dtype"] = dtype;
                what = $"{name}.dtype = '{dtype}'";
                break;
            case 1:
                var shape = HostileShape(entry["shape"]!.AsArray().Select(d => (long)d!).ToArray(), random);
                entry["shape"] = shape;
                what = $"{name}.shape = {shape.ToJsonString()}";
                break;
            case 2:
                var offsets = HostileOffsets(root, name, random);
                entry["data_offsets"] = offsets;
                what = $"{name}.data_offsets = {offsets.ToJsonString()}";
                break;
            case 3:
                var renamed = random.Next(2) == 0 ? name + ".extra" : random.Pick(tensors);
                var moved = root[name];
                root.Remove(name);
                if (root.ContainsKey(renamed)) root.Remove(renamed);
                root[renamed] = moved;
                what = $"renamed '{name}' to '{renamed}'";
                break;
            case 4:
                var copy = entry.DeepClone();
                return (Join(Encoding.UTF8.GetBytes(JsonMutations.SerializeWithDuplicate(root, root, name, copy)), payload), $"listed '{name}' twice");
            case 5 when root["__metadata__"] is JsonObject metadata && metadata.Count > 0:
                var key = metadata.First().Key;
                if (random.Next(2) == 0)
                    return (Join(Encoding.UTF8.GetBytes(JsonMutations.SerializeWithDuplicate(root, metadata, key, "other")), payload), $"metadata key '{key}' twice");
                var value = JsonMutations.HostileValue(random);
                metadata[key] = value;
                what = $"metadata '{key}' = {JsonMutations.Serialize(value)[..Math.Min(40, JsonMutations.Serialize(value).Length)]}";
                break;
            default:
                var (text, edit) = JsonMutations.Mutate(root, random);
                return (Join(Encoding.UTF8.GetBytes(text), payload), edit);
        }
        return (Join(Encoding.UTF8.GetBytes(JsonMutations.Serialize(root)), payload), what);
    }

    static JsonArray HostileShape(long[] shape, Random random)
    {
        long count = shape.Aggregate(1L, (a, b) => a * b);
        JsonNode?[] dims = random.Next(12) switch
        {
            0 => [],
            1 => [-1],
            2 => [count, -1],
            3 => [1L << 62, 4],
            4 => [1L << 61],
            5 => [4294967296L, 4294967296L],
            6 => [2.5],
            7 => ["3"],
            8 => Enumerable.Range(0, 40).Select(_ => (JsonNode?)1).Append(count).ToArray(),
            9 => [count * 2],
            10 => [count, 0, long.MaxValue],
            _ => shape.Reverse().Select(d => (JsonNode?)d).Append(1).ToArray(),   // same size, other shape: only the model notices
        };
        return new JsonArray(dims);
    }

    static JsonArray HostileOffsets(JsonObject root, string name, Random random)
    {
        var own = root[name]!["data_offsets"]!.AsArray().Select(o => (long)o!).ToArray();
        var other = root.Where(kv => kv.Key != "__metadata__" && kv.Key != name).Select(kv => kv.Value!["data_offsets"]!.AsArray().Select(o => (long)o!).ToArray()).FirstOrDefault() ?? own;
        JsonNode?[] offsets = random.Next(10) switch
        {
            0 => [own[1], own[0]],
            1 => [own[0] + 1, own[1] + 1],
            2 => [own[0], long.MaxValue],
            3 => [-1, own[1]],
            4 => [other[0], other[1]],
            5 => [own[0]],
            6 => [own[0], own[1], own[1]],
            7 => ["0", own[1]],
            8 => [own[0] - 4, own[1] - 4],
            _ => [0, 1e30],
        };
        return new JsonArray(offsets);
    }

    /// <summary>A well-formed file that does not fit the module: a tensor missing, extra, reshaped or of another dtype.</summary>
    (byte[], string) MismatchTheModel(Random random)
    {
        var tensors = new Dictionary<string, Tensor>(moduleTensors);
        var name = random.Pick(tensors.Keys.ToList());
        string what;
        switch (random.Next(5))
        {
            case 0: tensors.Remove(name); what = $"dropped '{name}'"; break;
            case 1: tensors["extra.weight"] = ones(2); what = "added 'extra.weight'"; break;
            case 2: tensors[name] = tensors[name].reshape(-1); what = $"'{name}' flattened"; break;
            case 3: tensors[name] = zeros(tensors[name].NumberOfElements + 1); what = $"'{name}' one element longer"; break;
            default:
                var dtype = random.Pick(new[] { ScalarType.Float16, ScalarType.Float64, ScalarType.Int64, ScalarType.Bool, ScalarType.Byte });
                tensors[name] = tensors[name].to_type(dtype);
                what = $"'{name}' stored as {dtype}";
                break;
        }
        return (WriteAndRead(tensors, new Dictionary<string, string>()), what);
    }

    public override void Dispose()
    {
        module.Dispose();
        foreach (var t in moduleTensors.Values) t.Dispose();
    }
}
