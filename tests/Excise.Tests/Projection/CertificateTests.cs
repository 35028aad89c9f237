using Excise.Projection;
using static TorchSharp.torch;

namespace Excise.Tests.Projection;

public class CertificateTests
{
    [Fact]
    public void Passes_an_orthogonal_change_and_fails_an_unprojected_one()
    {
        var (u, _) = linalg.qr(randn(384, 4));
        var baseW = randn(32, 384);
        var free = 0.01f * randn(32, 384);
        var projected = free - free.matmul(u).matmul(u.t());
        var names = new[] { "block.attn2.to_k.weight" };
        var basis = new Dictionary<string, Tensor> { [names[0]] = baseW };

        var good = ProjectionCertificate.Compute(new Dictionary<string, Tensor> { [names[0]] = baseW + projected }, basis, u, [@"to_k\.weight$"], 1e-4);
        var bad = ProjectionCertificate.Compute(new Dictionary<string, Tensor> { [names[0]] = baseW + free }, basis, u, [@"to_k\.weight$"], 1e-4);
        Assert.True(good.Passed, $"share {good.WorstShare:E2}");
        Assert.False(bad.Passed);
        // A random change puts about sqrt(k/d) of its norm into a k-dimensional subspace.
        Assert.InRange(bad.WorstShare, 0.05, 0.2);
        Assert.Contains("\"passed\": false", bad.ToJson());
        Assert.Contains("\"worst_share_of_change_in_concept\"", bad.ToJson());

        // certificate.json reads back as the record it was, verdict included (recomputed from the weights).
        using var dir = new TempDir();
        File.WriteAllText(dir.File("certificate.json"), bad.ToJson());
        var back = ProjectionCertificate.Load(dir.File("certificate.json"));
        Assert.Equal(bad.Weights, back.Weights);
        Assert.Equal(bad.WorstShare, back.WorstShare);
        Assert.False(back.Passed);
        File.WriteAllText(dir.File("other.json"), "[1]");
        var error = Assert.Throws<InvalidDataException>(() => ProjectionCertificate.Load(dir.File("other.json")));
        Assert.Contains("other.json: not a projection certificate", error.Message);
    }

    [Fact]
    public void The_rounding_floor_is_half_a_unit_in_the_last_place_of_each_stored_element()
    {
        // 1.0 and 1.5 share the power of two 2⁰, so half their ulp is 2⁻²⁴; 3.0's is 2⁻²³; 0 rounds to nothing.
        using var stored = tensor(new float[] { 1.0f, 1.5f, 3.0f, 0f });
        double expected = Math.Sqrt(2 * Math.Pow(2, -48) + Math.Pow(2, -46));
        Assert.Equal(expected, ProjectionCertificate.RoundingFloor(stored), 12);
        using var half = stored.to(ScalarType.Float16);
        Assert.Equal(expected * Math.Pow(2, 13), ProjectionCertificate.RoundingFloor(half), 12);
    }

    [Fact]
    public void A_concept_change_within_the_float32_floor_passes_and_one_three_times_over_it_fails()
    {
        // A learned change so small that any concept component is float32 rounding: the ratio exceeds the tolerance,
        // but no stored change of that size can be told from rounding. The same ratios three times over the floor fail.
        var (u, _) = linalg.qr(randn(384, 8, generator: new Generator(3)));
        var baseW = randn(32, 384, generator: new Generator(4));
        var names = new[] { "block.attn2.to_v.weight" };
        var reference = new Dictionary<string, Tensor> { [names[0]] = baseW };
        double floor = ProjectionCertificate.RoundingFloor(baseW);
        var direction = randn(32, 8, generator: new Generator(5)).matmul(u.t());
        var orthogonal = 1e-4f * randn(32, 384, generator: new Generator(6));
        orthogonal -= orthogonal.matmul(u).matmul(u.t());

        ProjectionCertificate WithConceptChange(double size)
        {
            // Stored in float32 as training stores it: the storing adds its own rounding, about a tenth of the floor along U.
            var change = orthogonal + direction * (float)(size / direction.norm().ToDouble());
            return ProjectionCertificate.Compute(new Dictionary<string, Tensor> { [names[0]] = baseW + change }, reference, u, [@"to_v\.weight$"], 1e-4);
        }

        var within = WithConceptChange(0.5 * floor);
        var over = WithConceptChange(3 * floor);
        Assert.True(within.WorstShare > 1e-4, $"the test's change must exceed the ratio tolerance ({within.WorstShare:E2})");
        Assert.True(over.WorstShare > 1e-4);
        Assert.True(within.Passed);
        Assert.True(within.Weights[0].PassedWithinRounding);
        Assert.False(over.Passed);
    }

    [Fact]
    public void LoRA_factor_patterns_map_to_the_merged_weights()
    {
        Assert.Equal([@"attn2\.to_k\.weight$"], ProjectionCertificate.MergedWeightPatterns([@"attn2\.to_k\.lora_A\.weight$"]));
    }
}
