using Excise.Configuration;
using System.Globalization;
using System.Text.Json;
using Excise.Serialization;
using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Projection;

public sealed partial class ConceptBasis
{
    public const string FormatName = "excise.concept-basis";
    public const string BasisTensor = "basis";
    public const string SingularValuesTensor = "singular_values";

    /// <summary>
    /// Writes "basis" (F32 [d, k]) and "singular_values" (F64, so <see cref="ConceptBasisInfo.SingularValues"/> survive
    /// bit-exactly) with the info as string metadata (lists as JSON arrays, numbers in round-trip form). Atomic.
    /// </summary>
    public void Save(string path)
    {
        using var singular = tensor(Info.SingularValues.ToArray(), ScalarType.Float64);
        var metadata = new Dictionary<string, string>
        {
            ["format"] = FormatName,
            ["format_version"] = "1",
            ["concepts"] = JsonSerializer.Serialize(Info.Concepts),
            ["prompts"] = JsonSerializer.Serialize(Info.Prompts),
            ["encoder_id"] = Info.EncoderId,
            ["mode"] = Info.Mode.ToName(),
            ["energy_kept"] = Info.EnergyKept.ToString("R", CultureInfo.InvariantCulture),
            ["rank"] = Rank.ToString(CultureInfo.InvariantCulture),
            ["dimension"] = Dimension.ToString(CultureInfo.InvariantCulture),
            ["vectors_collected"] = Info.VectorsCollected.ToString(CultureInfo.InvariantCulture),
            ["vectors_kept"] = Info.VectorsKept.ToString(CultureInfo.InvariantCulture),
        };
        SafetensorsFile.Save(path, [new(BasisTensor, U), new(SingularValuesTensor, singular)], metadata);
    }

    /// <summary>Reads a basis written by <see cref="Save"/>, refusing files whose shapes, metadata or orthonormality are wrong.</summary>
    public static ConceptBasis Load(string path)
    {
        using var contents = SafetensorsFile.Load(path);
        var metadata = contents.Metadata;
        string Meta(string key) => metadata.TryGetValue(key, out var value) ? value
            : throw Invalid(path, $"metadata '{key}' is missing");

        if (!metadata.TryGetValue("format", out var format) || format != FormatName)
            throw Invalid(path, $"metadata 'format' is {(format is null ? "missing" : $"'{format}'")}, expected '{FormatName}'");
        if (Meta("format_version") != "1") throw Invalid(path, $"format_version '{Meta("format_version")}' is not supported (this build reads 1)");

        if (!contents.Tensors.TryGetValue(BasisTensor, out var basis)) throw Invalid(path, $"tensor '{BasisTensor}' is missing");
        if (basis.dtype != ScalarType.Float32 || basis.dim() != 2)
            throw Invalid(path, $"tensor '{BasisTensor}' is {basis.dtype} [{string.Join(", ", basis.shape)}], expected Float32 [d, k]");
        long d = basis.shape[0], k = basis.shape[1];
        if (k < 1 || k > d) throw Invalid(path, $"tensor '{BasisTensor}' has shape [{d}, {k}]; a basis needs 1 ≤ k ≤ d");
        if (!basis.isfinite().all().ToBoolean()) throw Invalid(path, $"tensor '{BasisTensor}' contains NaN or infinite values");

        if (!contents.Tensors.TryGetValue(SingularValuesTensor, out var singular)) throw Invalid(path, $"tensor '{SingularValuesTensor}' is missing");
        if (singular.dtype != ScalarType.Float64 || singular.dim() != 1 || singular.shape[0] < k)
            throw Invalid(path, $"tensor '{SingularValuesTensor}' is {singular.dtype} [{string.Join(", ", singular.shape)}], expected Float64 [n] with n ≥ rank {k}");
        var singularValues = singular.data<double>().ToArray();
        if (singularValues.Any(s => !double.IsFinite(s) || s < 0) || singularValues.Zip(singularValues.Skip(1)).Any(p => p.Second > p.First))
            throw Invalid(path, $"tensor '{SingularValuesTensor}' must hold finite, non-negative, descending values");

        int rank = Int(path, metadata, "rank"), dimension = Int(path, metadata, "dimension");
        if (rank != k || dimension != d) throw Invalid(path, $"metadata says [{dimension}, {rank}] but tensor '{BasisTensor}' is [{d}, {k}]");
        if (!EnumNames.TryParse<SubspaceMode>(Meta("mode"), out var mode))
            throw Invalid(path, $"metadata 'mode' is '{Meta("mode")}', expected one of {EnumNames.AllNames<SubspaceMode>("|")}");
        if (!double.TryParse(Meta("energy_kept"), NumberStyles.Float, CultureInfo.InvariantCulture, out var energy) || !(energy >= 0 && energy <= 1 + 1e-9))
            throw Invalid(path, $"metadata 'energy_kept' is '{Meta("energy_kept")}', expected a number in [0, 1]");
        var concepts = StringList(path, metadata, "concepts");
        if (concepts.Count == 0) throw Invalid(path, "metadata 'concepts' is empty");

        double error = SubspaceMath.OrthonormalityError(basis);
        if (!(error < OrthonormalityTolerance))
            throw Invalid(path, $"columns of '{BasisTensor}' are not orthonormal (max |UᵀU − I| = {error:G3}, tolerance {OrthonormalityTolerance:G1}); the file is corrupt or not a basis");

        var info = new ConceptBasisInfo(concepts, StringList(path, metadata, "prompts"), Meta("encoder_id"), mode, energy, rank,
            singularValues, Int(path, metadata, "vectors_collected"), Int(path, metadata, "vectors_kept"));
        return new ConceptBasis(basis, info);
    }

    static int Int(string path, IReadOnlyDictionary<string, string> metadata, string key) =>
        metadata.TryGetValue(key, out var text) && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw Invalid(path, $"metadata '{key}' is {(text is null ? "missing" : $"'{text}'")}, expected a non-negative integer");

    static IReadOnlyList<string> StringList(string path, IReadOnlyDictionary<string, string> metadata, string key)
    {
        if (!metadata.TryGetValue(key, out var json)) throw Invalid(path, $"metadata '{key}' is missing");
        try
        {
            var list = JsonSerializer.Deserialize<List<string>>(json);
            if (list is null || list.Any(s => s is null)) throw new JsonException("null entries");
            return list;
        }
        catch (JsonException e)
        {
            throw Invalid(path, $"metadata '{key}' is not a JSON array of strings ({e.Message})");
        }
    }

    static InvalidDataException Invalid(string path, string what) => new($"{path}: not a usable concept basis: {what}.");
}
