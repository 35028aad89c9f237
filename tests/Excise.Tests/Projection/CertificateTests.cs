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
    public void LoRA_factor_patterns_map_to_the_merged_weights()
    {
        Assert.Equal([@"attn2\.to_k\.weight$"], ProjectionCertificate.MergedWeightPatterns([@"attn2\.to_k\.lora_A\.weight$"]));
    }
}
