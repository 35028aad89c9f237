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
    }

    [Fact]
    public void LoRA_factor_patterns_map_to_the_merged_weights()
    {
        Assert.Equal([@"attn2\.to_k\.weight$"], ProjectionCertificate.MergedWeightPatterns([@"attn2\.to_k\.lora_A\.weight$"]));
    }
}
