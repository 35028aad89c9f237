using Excise.Attacks;
using Excise.Configuration;
using Excise.Diffusion;
using Excise.Tests.Training;
using static TorchSharp.torch;

namespace Excise.Tests.Diffusion;

/// <summary>The two solvers against the exact probability-flow ODE of Gaussian data, and against each other.</summary>
public class SolverTests
{
    // Data ~ N(0, s²) per pixel: the exact noise prediction is ε(x_t) = σ_t·x_t / (ᾱ_t·s² + σ_t²), and the ODE keeps
    // x_t / √(ᾱ_t·s² + σ_t²) constant, so from x at the first timestep it ends exactly at x·s / √(ᾱ·s² + 1 − ᾱ)
    // (small enough a scale that the sampler's final clamp to [−1, 1] never bites).
    const double DataScale = 0.25;

    static NoisePredictor GaussianOracle(NoiseSchedule schedule) => (x, t, _, _) =>
    {
        var alphaBar = schedule.AlphasCumprod[(int)t[0].ToSingle()];
        return x * (Math.Sqrt(1 - alphaBar) / (alphaBar * DataScale * DataScale + 1 - alphaBar));
    };

    [Theory]
    [InlineData(SamplerKind.Ddim)]
    [InlineData(SamplerKind.DpmSolver2M)]
    public void A_model_that_predicts_NaN_stops_sampling_instead_of_returning_black_images(SamplerKind kind)
    {
        // One image of four goes NaN late in sampling, as a diverged model's would: the final clamp keeps NaN, and a
        // NaN pixel is written as black, so without the check the judges would score a folder of black squares.
        var schedule = new NoiseSchedule(new NoiseScheduleOptions(BetaSchedule.Cosine));
        var oracle = GaussianOracle(schedule);
        NoisePredictor diverging = (x, t, s, m) =>
        {
            var eps = oracle(x, t, s, m);
            if (t[0].ToSingle() > 300) return eps;
            var poison = ones_like(eps);
            poison[2] = float.NaN;
            return eps * poison;
        };
        using var states = zeros(4, 2, 3);
        using var mask = ones(4, 2);
        var options = new SamplingOptions(10, GuidanceScale: 1, Seed: 5, Sampler: kind);
        var error = Assert.Throws<InvalidOperationException>(() =>
            new DiffusionSampler(schedule).Sample(diverging, [4, 1, 8, 8], states, mask, states[..1], mask[..1], options));
        Assert.Contains("non-finite", error.Message);
    }

    static double ErrorAgainstExactOde(SamplerKind kind, int steps)
    {
        var schedule = new NoiseSchedule(new NoiseScheduleOptions(BetaSchedule.Cosine));
        var sampler = new DiffusionSampler(schedule);
        var shape = new long[] { 4, 1, 8, 8 };
        var options = new SamplingOptions(steps, GuidanceScale: 1, ClipSample: false, Seed: 5, Sampler: kind, Spacing: TimestepSpacing.Linspace);
        using var states = zeros(4, 2, 3);
        using var mask = ones(4, 2);
        using var result = sampler.Sample(GaussianOracle(schedule), shape, states, mask, states[..1], mask[..1], options);
        // The sampler's starting noise, drawn again from the same seed.
        using var start = randn(shape, generator: new TorchSharp.torch.Generator(5));
        double a = schedule.AlphasCumprod[sampler.Timesteps(steps, TimestepSpacing.Linspace)[0]];
        using var exact = start * (DataScale / Math.Sqrt(a * DataScale * DataScale + 1 - a));
        return (result - exact).abs().max().ToDouble();
    }

    [Fact]
    public void DPM_Solver_converges_to_the_exact_ODE_solution_at_second_order()
    {
        double ddim10 = ErrorAgainstExactOde(SamplerKind.Ddim, 10), ddim20 = ErrorAgainstExactOde(SamplerKind.Ddim, 20);
        double dpm10 = ErrorAgainstExactOde(SamplerKind.DpmSolver2M, 10), dpm20 = ErrorAgainstExactOde(SamplerKind.DpmSolver2M, 20);
        var figures = $"DDIM {ddim10:E2} → {ddim20:E2}, DPM++ {dpm10:E2} → {dpm20:E2}";
        // Doubling the steps shrinks DDIM's error about 2× (first order) and DPM-Solver++(2M)'s about 4× (second order).
        Assert.True(ddim10 / ddim20 is > 1.5 and < 2.5, figures);
        Assert.True(dpm10 / dpm20 > 3, figures);
        Assert.True(dpm20 < ddim20 / 2, figures);
    }

    [Fact]
    public void Each_solver_walks_diffusers_timesteps()
    {
        var sampler = new DiffusionSampler(new NoiseSchedule(new NoiseScheduleOptions()));
        Assert.Equal(new[] { 999, 899, 799, 699, 599, 500, 400, 300, 200, 100 }, sampler.Timesteps(10, TimestepSpacing.Linspace));
        Assert.Equal(new[] { 900, 800, 700, 600, 500, 400, 300, 200, 100, 0 }, sampler.Timesteps(10, TimestepSpacing.Leading));
        Assert.Equal(TimestepSpacing.Linspace, new SamplingOptions(Sampler: SamplerKind.DpmSolver2M).EffectiveSpacing);
        Assert.Equal(TimestepSpacing.Leading, new SamplingOptions().EffectiveSpacing);
    }

    [Fact]
    public void DPM_Solver_takes_DDIM_steps_until_it_has_a_previous_prediction()
    {
        // With two steps there is no second-order step (the first has no history, the last lands on ᾱ = 1), so the
        // real model with guidance and clipping must give DDIM's images on the same timesteps; with three the
        // correction must show.
        var config = TinyRun.Config();
        using var model = TinyRun.Model(config);
        using var pipeline = new TextToImagePipeline(model, TinyRun.Encoder, new NoiseSchedule(config.DiffusionOrDefault), CPU);
        var prompts = new[] { "a photo of a sneaker", "a photo of a bag" };
        Tensor Generate(SamplerKind kind, int steps) =>
            pipeline.Generate(prompts, new SamplingOptions(steps, GuidanceScale: 3, Seed: 11, Sampler: kind, Spacing: TimestepSpacing.Linspace));
        using var ddim2 = Generate(SamplerKind.Ddim, 2);
        using var dpm2 = Generate(SamplerKind.DpmSolver2M, 2);
        using var ddim3 = Generate(SamplerKind.Ddim, 3);
        using var dpm3 = Generate(SamplerKind.DpmSolver2M, 3);
        Assert.True((ddim2 - dpm2).abs().max().ToDouble() < 1e-5, $"max |Δ| = {(ddim2 - dpm2).abs().max().ToDouble()}");
        Assert.True((ddim3 - dpm3).abs().max().ToDouble() > 1e-3);
    }

    [Fact]
    public void Sampler_names_parse_and_travel_through_configs()
    {
        Assert.Equal(SamplerKind.DpmSolver2M, EnumNames.Parse<SamplerKind>("DPM++2M", "sampler"));
        Assert.Equal(SamplerKind.Ddim, EnumNames.Parse<SamplerKind>("ddim", "sampler"));
        var unknown = Assert.Throws<ArgumentException>(() => EnumNames.Parse<SamplerKind>("euler", "sampler"));
        Assert.Contains("ddim, dpm++2m", unknown.Message);
        Assert.Throws<ArgumentException>(() => new SamplingOptions(Eta: 0.5, Sampler: SamplerKind.DpmSolver2M).Validate());

        Assert.Equal(SamplerKind.DpmSolver2M, TinyRun.Config("preview.sampler=dpm++2m").PreviewOrDefault.Sampler);
        Assert.Equal(SamplerKind.Ddim, TinyRun.Config().PreviewOrDefault.Sampler);
        var recorded = ConfigLoader.ToNode(new AttackSettings(AttackKind.Prompt, Sampler: SamplerKind.DpmSolver2M));
        Assert.Equal("dpm++2m", recorded["sampler"]!.GetValue<string>());
    }
}
