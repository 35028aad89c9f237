using Excise.Diffusion;
using static TorchSharp.torch;

namespace Excise.Tests.Diffusion;

public class NoiseScheduleTests
{
    [Theory]
    [InlineData(BetaSchedule.Linear)]
    [InlineData(BetaSchedule.ScaledLinear)]
    [InlineData(BetaSchedule.Cosine)]
    public void Alpha_bar_falls_from_near_one_to_near_zero(BetaSchedule kind)
    {
        var s = new NoiseSchedule(new NoiseScheduleOptions(kind, 1000, 0.00085, 0.012));
        var a = s.AlphasCumprod;
        Assert.Equal(1000, a.Count);
        for (int t = 1; t < a.Count; t++) Assert.True(a[t] < a[t - 1]);
        Assert.True(a[0] > 0.99);
        Assert.True(a[^1] < (kind == BetaSchedule.Cosine ? 1e-3 : 0.01));
    }

    [Fact]
    public void Linear_schedule_matches_the_DDPM_paper_endpoints()
    {
        var s = new NoiseSchedule(new NoiseScheduleOptions());
        Assert.Equal(1 - 1e-4, s.AlphasCumprod[0], 12);
        // ᾱ_T of the DDPM linear schedule: β_t = 1e-4 + (0.02 − 1e-4)·t/999 for t = 0…999, ᾱ_T = ∏(1 − β_t) ≈ 4.04e-5. A β range
        // that stops one step short of 0.02 (t/1000) moves it by 1%, a product that skips the last term by 2%: a ±12% range passes both.
        double expected = 1;
        for (int t = 0; t < 1000; t++) expected *= 1 - (1e-4 + (0.02 - 1e-4) * t / 999);
        Assert.Equal(expected, s.AlphasCumprod[^1], 1e-9 * expected);
    }

    [Fact]
    public void AddNoise_follows_the_forward_process()
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
    public void DDIM_timesteps_are_leading_spaced_and_descending()
    {
        var sampler = new DiffusionSampler(new NoiseSchedule(new NoiseScheduleOptions()));
        Assert.Equal(new[] { 980, 960, 940 }, sampler.Timesteps(50)[..3]);
        Assert.Equal(0, sampler.Timesteps(50)[^1]);
        Assert.Throws<ArgumentException>(() => sampler.Timesteps(2000));
    }

    [Fact]
    public void Stable_Diffusions_scheduler_settings_place_the_timesteps_as_diffusers_does()
    {
        var sampler = new DiffusionSampler(new NoiseSchedule(new NoiseScheduleOptions(BetaSchedule.ScaledLinear, 1000, 0.00085, 0.012)));
        // PNDM/DDIM with steps_offset 1 (SD 1.x): 981, 961, …, 1 at 50 steps.
        var leading = sampler.Timesteps(50, TimestepSpacing.Leading, stepsOffset: 1);
        Assert.Equal((981, 961, 1, 50), (leading[0], leading[1], leading[^1], leading.Length));
        // trailing: np.round(np.arange(1000, 0, -100)) − 1.
        Assert.Equal(new[] { 999, 899, 799, 699, 599, 499, 399, 299, 199, 99 }, sampler.Timesteps(10, TimestepSpacing.Trailing));
        Assert.Equal(new[] { 999, 666, 332 }, sampler.Timesteps(3, TimestepSpacing.Trailing));
        // The offset applies to leading spacing only, and may not push it past the schedule.
        Assert.Equal(sampler.Timesteps(10, TimestepSpacing.Trailing), sampler.Timesteps(10, TimestepSpacing.Trailing, stepsOffset: 1));
        Assert.Throws<ArgumentException>(() => sampler.Timesteps(10, TimestepSpacing.Leading, stepsOffset: 100));
    }

    [Fact]
    public void Without_set_alpha_to_one_the_last_step_ends_on_timestep_zeros_alpha_bar_and_latents_are_not_clamped()
    {
        var schedule = new NoiseSchedule(new NoiseScheduleOptions(BetaSchedule.ScaledLinear, 1000, 0.00085, 0.012));
        var sampler = new DiffusionSampler(schedule);
        using var scope = NewDisposeScope();
        var states = zeros(1, 3, 8);
        var mask = ones(1, 3);
        // A model that predicts no noise: one trailing step from t = 999 gives x₀ = x_T/√ᾱ₉₉₉ and then √ᾱ_end·x₀.
        NoisePredictor none = (x, _, _, _) => zeros_like(x);
        var options = new SamplingOptions(Steps: 1, GuidanceScale: 1.0, ClipSample: false, Seed: 4, Spacing: TimestepSpacing.Trailing);
        var clean = sampler.Sample(none, [1, 4, 8, 8], states, mask, states, mask, options, latents: true);
        var toAlphaZero = sampler.Sample(none, [1, 4, 8, 8], states, mask, states, mask, options with { SetAlphaToOne = false }, latents: true);
        var start = randn(new long[] { 1, 4, 8, 8 }, generator: new TorchSharp.torch.Generator(4));
        Assert.True(clean.allclose(start / Math.Sqrt(schedule.AlphasCumprod[999]), rtol: 1e-5, atol: 0));
        Assert.True(toAlphaZero.allclose(clean * Math.Sqrt(schedule.AlphasCumprod[0]), rtol: 1e-5, atol: 0));
        // Latents keep their range (|x_T|/√ᾱ₉₉₉ reaches ~40 here); pixels are clamped to [−1, 1].
        Assert.True(clean.abs().max().ToDouble() > 5);
        var pixels = sampler.Sample(none, [1, 4, 8, 8], states, mask, states, mask, options);
        Assert.Equal(1.0, pixels.abs().max().ToDouble(), 6);
    }
}
