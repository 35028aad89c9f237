using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Excise.Configuration;
using Excise.Serialization;
using static TorchSharp.torch;

namespace Excise.Evaluation.Judges;

/// <summary>What a judge file says about itself, read from its safetensors metadata.</summary>
internal sealed record JudgeFileHeader(string Kind, string Key, string Id, JudgeArchitecture Architecture, int Outputs,
    IReadOnlyDictionary<string, string> Metadata)
{
    public string Required(string name, string path) => Metadata.TryGetValue(name, out var value) ? value
        : throw new InvalidDataException($"{path}: judge file lacks metadata '{name}'; it was not written by this version of Excise. Delete it to retrain.");

    public double RequiredNumber(string name, string path)
    {
        var text = Required(name, path);
        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value) ? value
            : throw new InvalidDataException($"{path}: judge metadata '{name}' is '{text}', not a finite number.");
    }

    public T RequiredJson<T>(string name, string path)
    {
        var text = Required(name, path);
        try { return JsonSerializer.Deserialize<T>(text, ConfigLoader.JsonOptions) ?? throw new JsonException("null"); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: judge metadata '{name}' is not a valid {typeof(T).Name} ({e.Message}).", e); }
    }
}

/// <summary>
/// Judge weights as safetensors with self-describing metadata (kind, settings key, id, architecture, a SHA-256 of the
/// weights, the held-out report), plus a human-readable <c>.json</c> copy of the report next to them. Loading refuses
/// a file of the wrong kind, for other settings, with altered weights or a mismatched network.
/// </summary>
internal static class JudgeStore
{
    public const string FormatVersion = "1";
    const string Prefix = "excise.judge.";
    public const string FormatKey = Prefix + "format", KindKey = Prefix + "kind", SettingsKey = Prefix + "key", IdKey = Prefix + "id",
        ArchitectureKey = Prefix + "architecture", OutputsKey = Prefix + "outputs", WeightsHashKey = Prefix + "weights_sha256",
        ReportKey = Prefix + "report", RecipeKey = Prefix + "training_recipe";

    public static string ReportPathFor(string weightsPath) => Path.ChangeExtension(weightsPath, ".json");

    /// <summary>Hex SHA-256 over the state dict (names, dtypes, shapes, bytes) in name order.</summary>
    public static string WeightsHash(IEnumerable<KeyValuePair<string, Tensor>> tensors)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var (name, tensor) in tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            hash.AppendData(System.Text.Encoding.UTF8.GetBytes($"{name}|{tensor.dtype}|{string.Join(",", tensor.shape)}|"));
            using var cpu = tensor.detach().cpu().contiguous();
            hash.AppendData(cpu.bytes);
        }
        return Digest.Hex(hash.GetHashAndReset());
    }

    public static string IdFor(string kind, string key, string weightsHash) => $"{kind}-{key}-{weightsHash[..8]}";

    public static void Save(string path, JudgeNetwork network, string kind, int trainingRecipe, string key, string id, JudgeArchitecture architecture,
        object report, IReadOnlyDictionary<string, string> extra)
    {
        var state = network.state_dict();
        var reportJson = JsonSerializer.Serialize(report, report.GetType(), ConfigLoader.JsonOptions);
        var metadata = new Dictionary<string, string>(extra)
        {
            [FormatKey] = FormatVersion,
            [KindKey] = kind,
            [RecipeKey] = trainingRecipe.ToString(CultureInfo.InvariantCulture),
            [SettingsKey] = key,
            [IdKey] = id,
            [ArchitectureKey] = JsonSerializer.Serialize(architecture, ConfigLoader.JsonOptions),
            [OutputsKey] = network.Outputs.ToString(CultureInfo.InvariantCulture),
            [WeightsHashKey] = WeightsHash(state),
            [ReportKey] = reportJson,
        };
        SafetensorsFile.Save(path, state, metadata);
        AtomicFile.WriteAllText(ReportPathFor(path), reportJson + Environment.NewLine);
    }

    /// <summary>Reads and checks a judge file; the caller owns the returned network.</summary>
    /// <param name="expectedRecipe">The training recipe version this build trains; a file trained by another is refused.</param>
    public static (JudgeNetwork Network, JudgeFileHeader Header) Load(string path, string expectedKind, int expectedRecipe, string? expectedKey)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Judge file not found: {path}", path);
        using var contents = SafetensorsFile.Load(path);
        var metadata = contents.Metadata;
        string Get(string name) => metadata.TryGetValue(name, out var v) ? v
            : throw new InvalidDataException($"{path}: not an Excise judge file (metadata '{name}' is missing). Delete it to retrain.");
        if (Get(FormatKey) != FormatVersion)
            throw new InvalidDataException($"{path}: judge format version {Get(FormatKey)}, this build reads version {FormatVersion}. Delete it to retrain.");
        var kind = Get(KindKey);
        if (kind != expectedKind) throw new InvalidDataException($"{path}: holds a {kind} judge, expected a {expectedKind}.");
        // Checked before the settings key (which includes the recipe) so the message says what actually differs.
        var recipe = metadata.TryGetValue(RecipeKey, out var recorded) ? recorded : "none (written before recipes were recorded)";
        if (recipe != expectedRecipe.ToString(CultureInfo.InvariantCulture))
            throw new InvalidDataException(
                $"{path}: {kind} was trained by training recipe {recipe}; this build trains recipe {expectedRecipe} (its training code changed). Delete it to retrain.");
        var key = Get(SettingsKey);
        if (expectedKey is not null && key != expectedKey)
            throw new InvalidDataException($"{path}: judge was trained for settings {key}, not the requested {expectedKey}. Delete it to retrain.");
        var header = new JudgeFileHeader(kind, key, Get(IdKey), null!, 0, metadata);
        var architecture = header.RequiredJson<JudgeArchitecture>(ArchitectureKey, path);
        architecture.Validate(path);
        if (!int.TryParse(Get(OutputsKey), NumberStyles.None, CultureInfo.InvariantCulture, out int outputs) || outputs is < 1 or > 1000)
            throw new InvalidDataException($"{path}: judge metadata '{OutputsKey}' is '{Get(OutputsKey)}', not an output count in 1..1000.");
        var actualHash = WeightsHash(contents.Tensors);
        if (actualHash != Get(WeightsHashKey))
            throw new InvalidDataException($"{path}: the weights do not match their recorded SHA-256 (file altered or damaged). Delete it to retrain.");
        if (IdFor(kind, key, actualHash) != header.Id)
            throw new InvalidDataException($"{path}: judge id '{header.Id}' does not match its kind, settings and weights.");

        var network = new JudgeNetwork(architecture, outputs);
        try
        {
            ModuleWeights.Load(network, contents.Tensors, path, strict: true);
        }
        catch
        {
            network.Dispose();
            throw;
        }
        network.eval();
        return (network, header with { Architecture = architecture, Outputs = outputs });
    }
}

/// <summary>
/// Where trained judges live: one file per (kind, settings key), the key a hash of everything that decides the weights
/// (the kind's training recipe version, stamping, training settings, data subset), so an experiment trains each judge
/// once and reuses it, and a change to the training code (with its recipe version bumped) trains a new one.
/// </summary>
public static class JudgeCache
{
    public const string DefaultDirectory = "runs/judges";

    /// <summary>First 16 hex digits of the SHA-256 of the kind, its training recipe version and the settings' JSON (snake_case, as written in the report).</summary>
    public static string Key(string kind, int trainingRecipe, params object[] settings)
    {
        var json = kind + "\nrecipe " + trainingRecipe.ToString(CultureInfo.InvariantCulture) + "\n" + string.Join("\n", settings.Select(s => JsonSerializer.Serialize(s, s.GetType(), ConfigLoader.JsonOptions)));
        return Digest.Short(json);
    }

    public static string WeightsPath(string cacheDirectory, string kind, string key) =>
        Path.Combine(cacheDirectory, $"{kind}-{key}.safetensors");
}
