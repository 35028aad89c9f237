using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Excise.Serialization;
using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Projection;

/// <summary>
/// For one projected weight: how much of its learned change ΔW = W − W_base lies in the concept subspace.
/// <see cref="ShareOfChangeInConcept"/> = ‖ΔW U‖_F / ‖ΔW‖_F; <see cref="ConceptResponseShift"/> = ‖ΔW U‖_F / ‖W_base U‖_F,
/// how far the weight's response to concept directions moved relative to what it was (relative to ‖W_base‖_F when the base
/// has no response to speak of, as after erase_concept).
/// <see cref="RoundingFloor"/> is the float32 floor: ‖ΔW U‖_F can be this large from rounding the stored weights alone
/// (half a unit in the last place of each element of W, in any direction); a weight whose concept change is within it
/// passes whatever its ratios, because below it no stored change can be told from rounding. Certificates written
/// before the floor was recorded read back with 0.
/// </summary>
public sealed record WeightCertificate(string Name, double ChangeNorm, double ConceptChangeNorm, double BaseConceptNorm,
                                       double ShareOfChangeInConcept, double ConceptResponseShift, bool Passed, double RoundingFloor = 0)
{
    /// <summary>Passed because the concept change is no larger than the rounding of the stored weights, though a ratio exceeds the tolerance.</summary>
    [JsonIgnore]
    public bool PassedWithinRounding => Passed && ConceptChangeNorm <= RoundingFloor && ConceptChangeNorm > 0;
}

public sealed record ProjectionCertificate(string WeightsPath, string BasePath, int BasisRank, double Tolerance,
                                           IReadOnlyList<WeightCertificate> Weights)
{
    public bool Passed => Weights.Count > 0 && Weights.All(w => w.Passed);
    [JsonPropertyName("worst_share_of_change_in_concept")]
    public double WorstShare => Weights.Count == 0 ? double.NaN : Weights.Max(w => w.ShareOfChangeInConcept);
    [JsonPropertyName("worst_concept_response_shift")]
    public double WorstShift => Weights.Count == 0 ? double.NaN : Weights.Max(w => w.ConceptResponseShift);

    /// <summary>certificate.json: the record, with its verdict and worst figures beside the per-weight ones (read back they are recomputed).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, RecordJson.Options);

    public static ProjectionCertificate Load(string path) => RecordJson.Read<ProjectionCertificate>(File.ReadAllText(path), path, "a projection certificate");

    /// <summary>
    /// Checks every weight matching <paramref name="patterns"/> (computed in float64). A weight passes when both
    /// ratios are at most <paramref name="tolerance"/>, or when ‖ΔW U‖_F is within the rounding floor of its stored
    /// values; an unchanged weight passes trivially (share reported as 0).
    /// </summary>
    public static ProjectionCertificate Compute(IReadOnlyDictionary<string, Tensor> trained, IReadOnlyDictionary<string, Tensor> baseWeights,
        Tensor basis, IReadOnlyList<string> patterns, double tolerance, string weightsPath = "", string basePath = "")
    {
        var regexes = patterns.Select(p => Configuration.NamePattern.Compile(p, "Certificate pattern")).ToList();
        using var u = basis.detach().cpu().to(ScalarType.Float64);
        var results = new List<WeightCertificate>();
        foreach (var name in trained.Keys.Where(n => regexes.Any(r => r.IsMatch(n))).Order())
        {
            if (!baseWeights.TryGetValue(name, out var b))
                throw new InvalidDataException($"{basePath}: the base weights have no '{name}' to compare with.");
            using var scope = NewDisposeScope();
            var w = trained[name].detach().cpu().to(ScalarType.Float64);
            var wb = b.detach().cpu().to(ScalarType.Float64);
            if (!w.shape.SequenceEqual(wb.shape) || w.shape[^1] != u.shape[0])
                throw new InvalidDataException($"'{name}' is [{string.Join(", ", w.shape)}] trained, [{string.Join(", ", wb.shape)}] in the base; the basis has dimension {u.shape[0]}.");
            var delta = w - wb;
            double change = delta.norm().ToDouble();
            double conceptChange = delta.matmul(u).norm().ToDouble();
            double baseConcept = wb.matmul(u).norm().ToDouble();
            double share = change > 0 ? conceptChange / change : 0;
            // A reference that is already blind to the subspace (erase_concept) has no response to be relative to:
            // its shift is then measured against the whole weight instead.
            double baseNorm = wb.norm().ToDouble();
            double reference = baseConcept > 1e-6 * baseNorm ? baseConcept : baseNorm;
            double shift = reference > 0 ? conceptChange / reference : (conceptChange > 0 ? double.PositiveInfinity : 0);
            double floor = RoundingFloor(trained[name]);
            bool passed = (share <= tolerance && shift <= tolerance) || conceptChange <= floor;
            results.Add(new WeightCertificate(name, change, conceptChange, baseConcept, share, shift, passed, floor));
        }
        if (results.Count == 0)
            throw new InvalidDataException($"No weight of {weightsPath} matches the projected patterns ({string.Join(", ", patterns)}).");
        return new ProjectionCertificate(weightsPath, basePath, (int)basis.shape[1], tolerance, results);
    }

    /// <summary>
    /// ‖E‖_F for E the largest rounding the stored weights can carry: half a unit in the last place of each element, in
    /// the tensor's own precision (float32: 2⁻²⁴ of the element's power of two).
    /// </summary>
    public static double RoundingFloor(Tensor stored)
    {
        using var scope = NewDisposeScope();
        double epsilon = stored.dtype switch
        {
            ScalarType.Float32 => Math.Pow(2, -23),
            ScalarType.Float16 => Math.Pow(2, -10),
            ScalarType.BFloat16 => Math.Pow(2, -7),
            ScalarType.Float64 => Math.Pow(2, -52),
            var other => throw new InvalidDataException($"Cannot certify a weight stored as {other}."),
        };
        // 2^floor(log2|w|) is the element's power of two; 0 gives 2^-inf = 0, which is what rounding does to it.
        var power = stored.detach().cpu().to(ScalarType.Float64).abs().log2().floor().exp2();
        return power.mul(epsilon / 2).norm().ToDouble();
    }

    public static ProjectionCertificate Compute(string weightsPath, string basePath, Tensor basis, IReadOnlyList<string> patterns, double tolerance)
    {
        using var trained = SafetensorsFile.Load(weightsPath);
        using var baseWeights = SafetensorsFile.Load(basePath);
        return Compute(trained.Tensors, baseWeights.Tensors, basis, patterns, tolerance, weightsPath, basePath);
    }

    /// <summary>Certificates read merged weights, so LoRA factor patterns (…lora_A.weight) map to the weight they adapt.</summary>
    public static IReadOnlyList<string> MergedWeightPatterns(IReadOnlyList<string> patterns) =>
        patterns.Select(p => p.Replace(@"\.lora_A\.weight", @"\.weight").Replace(".lora_A.weight", ".weight")).Distinct().ToList();
}
