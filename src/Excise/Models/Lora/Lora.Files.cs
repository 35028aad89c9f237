using System.Globalization;
using System.Text;
using System.Text.Json;
using Excise.Serialization;
using static TorchSharp.torch;

namespace Excise.Models.Lora;

public static partial class Lora
{
    public const string FileFormat = "excise-lora-1";

    /// <summary>Metadata keys of an adapter file (all values are strings, as safetensors requires).</summary>
    public static class MetadataKeys
    {
        public const string Format = "format";
        public const string Rank = "lora_rank";
        public const string Alpha = "lora_alpha";
        /// <summary>JSON array of the target patterns.</summary>
        public const string Targets = "lora_targets";
        /// <summary>JSON array of the adapted module names.</summary>
        public const string Modules = "lora_modules";
        /// <summary>SHA-256 of the base UNet's diffusers config JSON; loading refuses a model with another architecture.</summary>
        public const string BaseConfigSha256 = "base_config_sha256";
    }

    /// <summary>
    /// Writes only the adapter tensors (<c>…lora_A.weight</c>, <c>…lora_B.weight</c>) with rank, alpha, targets,
    /// adapted modules and the base config hash as metadata. <paramref name="extraMetadata"/> is for what only the
    /// caller knows (base checkpoint hash, training step, concept…); it may not override the keys above.
    /// </summary>
    public static void SaveAdapters(LoraAdapters adapters, string path, IReadOnlyDictionary<string, string>? extraMetadata = null)
    {
        ArgumentNullException.ThrowIfNull(adapters);
        if (adapters.Adapters.Count == 0) throw new ArgumentException($"No LoRA adapters to save to {path}.", nameof(adapters));
        var metadata = new Dictionary<string, string>
        {
            [MetadataKeys.Format] = FileFormat,
            [MetadataKeys.Rank] = adapters.Options.Rank.ToString(CultureInfo.InvariantCulture),
            [MetadataKeys.Alpha] = adapters.Options.Alpha.ToString("R", CultureInfo.InvariantCulture),
            [MetadataKeys.Targets] = JsonSerializer.Serialize(adapters.Options.TargetPatterns),
            [MetadataKeys.Modules] = JsonSerializer.Serialize(adapters.ModuleNames.ToList()),
            [MetadataKeys.BaseConfigSha256] = ConfigHash(adapters.BaseConfig),
        };
        foreach (var (key, value) in extraMetadata ?? new Dictionary<string, string>())
            if (!metadata.TryAdd(key, value))
                throw new ArgumentException($"Metadata key '{key}' is reserved for the adapter description.", nameof(extraMetadata));
        SafetensorsFile.Save(path, adapters.Parameters().Select(p => new KeyValuePair<string, Tensor>(p.Name, p.Param)), metadata);
    }

    /// <summary>
    /// Loads an adapter file into <paramref name="model"/>, injecting adapters as the file describes if the model has
    /// none (rank, alpha and adapted modules must then match the file). Names and shapes are checked before anything
    /// is copied; every problem is reported in one <see cref="InvalidDataException"/> naming the file and tensor.
    /// </summary>
    public static LoraAdapters LoadAdapters(UNet2DConditionModel model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        var metadata = SafetensorsFile.ReadMetadata(path);
        var description = Describe(path, metadata);

        var modelHash = ConfigHash(model.Config);
        if (metadata.TryGetValue(MetadataKeys.BaseConfigSha256, out var fileHash) && fileHash != modelHash)
            throw new InvalidDataException($"{path}: the adapters were trained on a UNet with another config (sha256 {fileHash}); this model's is {modelHash}.");

        var present = Adapters(model);
        List<(string Name, long In, long Out)> layers;
        if (present.Adapters.Count > 0)
        {
            if (present.Options.Rank != description.Rank || present.Options.Alpha != description.Alpha)
                throw new InvalidDataException($"{path}: holds rank {description.Rank}, alpha {description.Alpha}, but the model's adapters have rank {present.Options.Rank}, alpha {present.Options.Alpha}.");
            layers = present.Adapters.Select(a => (a.ModuleName, a.Layer.InFeatures, a.Layer.OutFeatures)).ToList();
        }
        else
        {
            layers = Select(model, description).Select(p => (p.Name, p.Weight.shape[1], p.Weight.shape[0])).ToList();
        }

        using var contents = SafetensorsFile.Load(path);
        var expected = layers.SelectMany(l => new[]
        {
            ($"{l.Name}.lora_A.weight", new[] { (long)description.Rank, l.In }),
            ($"{l.Name}.lora_B.weight", new[] { l.Out, (long)description.Rank }),
        }).ToList();
        CheckTensors(path, contents, expected);

        var adapters = present.Adapters.Count > 0 ? present : Inject(model, description);
        using var _ = no_grad();
        foreach (var (name, param) in adapters.Parameters()) param.copy_(contents[name]);
        return adapters;
    }

    /// <summary>A short stable hash of the architecture: the SHA-256 of the diffusers config JSON, hex.</summary>
    public static string ConfigHash(UNetConfig config) =>
        Digest.OfText(config.ToDiffusersJson());

    private static LoraOptions Describe(string path, IReadOnlyDictionary<string, string> metadata)
    {
        string Required(string key) => metadata.TryGetValue(key, out var value) ? value
            : throw new InvalidDataException($"{path}: not an Excise LoRA adapter file (metadata '{key}' is missing).");
        var format = Required(MetadataKeys.Format);
        if (format != FileFormat) throw new InvalidDataException($"{path}: adapter format '{format}' is not the supported '{FileFormat}'.");
        if (!int.TryParse(Required(MetadataKeys.Rank), NumberStyles.Integer, CultureInfo.InvariantCulture, out var rank))
            throw new InvalidDataException($"{path}: metadata {MetadataKeys.Rank} '{metadata[MetadataKeys.Rank]}' is not an integer.");
        if (!double.TryParse(Required(MetadataKeys.Alpha), NumberStyles.Float, CultureInfo.InvariantCulture, out var alpha))
            throw new InvalidDataException($"{path}: metadata {MetadataKeys.Alpha} '{metadata[MetadataKeys.Alpha]}' is not a number.");
        List<string>? targets;
        try { targets = JsonSerializer.Deserialize<List<string>>(Required(MetadataKeys.Targets)); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: metadata {MetadataKeys.Targets} is not a JSON list of strings ({e.Message})."); }
        try { return new LoraOptions(rank, alpha, targets).Validate(); }
        catch (ArgumentException e) { throw new InvalidDataException($"{path}: invalid adapter description: {e.Message}", e); }
    }

    private static void CheckTensors(string path, SafetensorsContents contents, IReadOnlyList<(string Name, long[] Shape)> expected)
    {
        var problems = new List<string>();
        foreach (var (name, shape) in expected)
        {
            if (!contents.Tensors.TryGetValue(name, out var stored)) problems.Add($"missing: {name} [{string.Join(", ", shape)}]");
            else if (!stored.shape.SequenceEqual(shape))
                problems.Add($"shape mismatch: {name} is [{string.Join(", ", stored.shape)}] in the file, the adapter needs [{string.Join(", ", shape)}]");
            else if (!stored.is_floating_point()) problems.Add($"dtype: {name} is {stored.dtype}, not floating point");
        }
        var names = expected.Select(e => e.Name).ToHashSet();
        problems.AddRange(contents.Names.Where(n => !names.Contains(n)).Select(n => $"unexpected: {n}"));
        if (problems.Count > 0)
            throw new InvalidDataException($"{path}: does not match the model's LoRA adapters ({problems.Count} problem(s)):{Environment.NewLine}  "
                + string.Join(Environment.NewLine + "  ", problems));
    }
}
