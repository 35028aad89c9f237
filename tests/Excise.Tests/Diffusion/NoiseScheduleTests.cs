using Excise.Diffusion;
using static TorchSharp.torch;

namespace Excise.Tests.Diffusion;

public class NoiseScheduleTests
{
    [Theory]
    [InlineData(BetaSchedule.Linear)]
    [InlineData(BetaSchedule.ScaledLinear)]
    [InlineData(BetaSchedule.Cosine)]
    public void AlphaBarFallsFromNearOneToNearZero(BetaSchedule kind)
    {
        var s = new NoiseSchedule(new NoiseScheduleOptions(kind, 1000, 0.00085, 0.012));
        var a = s.AlphasCumprod;
        Assert.Equal(1000, a.Count);
        for (int t = 1; t < a.Count; t++) Assert.True(a[t] < a[t - 1]);
        Assert.True(a[0] > 0.99);
        Assert.True(a[^1] < (kind == BetaSchedule.Cosine ? 1e-3 : 0.01));
    }

    [Fact]
    public void LinearScheduleMatchesTheDdpmPaperEndpoints()
    {
        var s = new NoiseSchedule(new NoiseScheduleOptions());
        Assert.Equal(1 - 1e-4, s.AlphasCumprod[0], 12);
        // ᾱ_T of the DDPM linear schedule (1e-4 → 0.02, T = 1000) is about 4.0e-5.
        Assert.InRange(s.AlphasCumprod[^1], 3.5e-5, 4.5e-5);
    }

    [Fact]
    public void AddNoiseFollowsTheForwardProcess()
    {
        var s = new NoiseSchedule(new NoiseScheduleOptions());
        using var x0 = full(new long[] { 2, 1, 2, 2 }, 0.5f);
        using var eps = full(new long[] { 2, 1, 2, 2 }, -1f);
        using var t = tensor(new long[] { 0, 999 });
        using var xt = s.AddNoise(x0, eps, t);
        double a0 = s.AlphasCumprod[0], aT = s.AlphasCumprod[999];
        Assert.Equal(Math.Sqrt(a0) * 0.5 - Math.Sqrt(1 - a0), xt[0, 0, 0, 0].ToDouble(), 5);
        Assert.Equal(Math.Sqrt(aT) * 0.5 - Math.Sqrt(1 - aT), xt[1, 0, 1, 1].ToDouble(), 5);
    }

    [Fact]
    public void DdimTimestepsAreLeadingSpacedAndDescending()
    {
        var sampler = new DiffusionSampler(new NoiseSchedule(new NoiseScheduleOptions()));
        Assert.Equal(new[] { 980, 960, 940 }, sampler.Timesteps(50)[..3]);
        Assert.Equal(0, sampler.Timesteps(50)[^1]);
        Assert.Throws<ArgumentException>(() => sampler.Timesteps(2000));
    }
}
