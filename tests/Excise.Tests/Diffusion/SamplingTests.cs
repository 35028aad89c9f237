using Excise.Diffusion;
using Excise.Tests.Training;
using static TorchSharp.torch;

namespace Excise.Tests.Diffusion;

public class SamplingTests
{
    [Fact]
    public void Each_prompt_is_sampled_with_its_own_seed_so_adding_a_prompt_leaves_the_others_alone()
    {
        var config = TinyRun.Config();
        using var model = TinyRun.Model(config);
        using var pipeline = new TextToImagePipeline(model, TinyRun.Encoder, new NoiseSchedule(config.DiffusionOrDefault), CPU);
        var options = new SamplingOptions(Steps: 3, GuidanceScale: 3, Seed: 5);
        var finished = new List<int>();
        var two = pipeline.GenerateForEachPrompt(["a photo of a sneaker", "a photo of a bag"], 3, options, finished.Add);
        var one = pipeline.GenerateForEachPrompt(["a photo of a bag"], 3, options with { Seed = 6 });
        Assert.Equal([1, 2], finished);
        Assert.All(two, row => Assert.Equal(3, row.Length));
        // The second prompt at seed 5 + 1 is the same prompt alone at seed 6, image for image.
        Assert.All(Enumerable.Range(0, 3), i => Assert.True(two[1][i].SameContentAs(one[0][i])));
        Assert.False(two[0][0].SameContentAs(two[1][0]));

        // A row per prompt; a lone prompt's images wrap at 8 columns. Images are upscaled 2× with a padding between them.
        var grid = TextToImagePipeline.PromptGrid(two);
        var single = TextToImagePipeline.PromptGrid([Enumerable.Repeat(one[0][0], 10).ToArray()]);
        Assert.True(grid.Height > 2 * 64 && grid.Height < 3 * 64 + 20, $"grid {grid.Width}×{grid.Height}");
        Assert.True(single.Height > 2 * 64 && single.Width > 8 * 64 && single.Width < 9 * 64, $"single {single.Width}×{single.Height}");
    }

    [Fact]
    public void DDIM_sampling_is_deterministic_per_seed()
    {
        var config = TinyRun.Config();
        using var model = TinyRun.Model(config);
        using var pipeline = new TextToImagePipeline(model, TinyRun.Encoder, new NoiseSchedule(config.DiffusionOrDefault), CPU);
        var prompts = new[] { "a photo of a sneaker", "a photo of a bag" };
        using var a = pipeline.Generate(prompts, new SamplingOptions(Steps: 5, GuidanceScale: 3, Seed: 7));
        using var b = pipeline.Generate(prompts, new SamplingOptions(Steps: 5, GuidanceScale: 3, Seed: 7));
        using var c = pipeline.Generate(prompts, new SamplingOptions(Steps: 5, GuidanceScale: 3, Seed: 8));
        Assert.Equal(new long[] { 2, 1, 32, 32 }, a.shape);
        Assert.True(a.eq(b).all().ToBoolean());
        Assert.False(a.eq(c).all().ToBoolean());
        Assert.True(a.abs().max().ToDouble() <= 1.0);
    }

    [Fact]
    public void Batched_guidance_equals_separate_conditional_and_unconditional_passes()
    {
        var config = TinyRun.Config();
        using var model = TinyRun.Model(config);
        model.eval();
        var schedule = new NoiseSchedule(config.DiffusionOrDefault);
        var states = TinyRun.Encoder.Encode(["a photo of a coat", ""]);
        using var all = tensor(states.States, new long[] { 2, states.Length, states.Width });
        using var mask = tensor(states.Mask, new long[] { 2, states.Length });
        double g = 4.0;
        var calls = new List<long>();
        NoisePredictor batched = (x, t, s, m) => { calls.Add(x.shape[0]); return model.forward(x, t, s, m); };
        // The same sampler, once with the real batched predictor, once with a predictor that guides by itself from two separate passes.
        NoisePredictor separate = (x, t, s, m) =>
        {
            using var _ = no_grad();
            int half = (int)x.shape[0] / 2;
            var eu = model.forward(x[..half], t[..half], s[..half], m?[..half]);
            var ec = model.forward(x[half..], t[half..], s[half..], m?[half..]);
            var guided = eu + g * (ec - eu);
            // Returned as [uncond, cond'] so that the sampler's own combination reproduces `guided` exactly at scale g… at scale 1 instead:
            return cat(new[] { guided, guided }, 0);
        };
        var sampler = new DiffusionSampler(schedule);
        using var a = sampler.Sample(batched, new long[] { 1, 1, 32, 32 }, all[..1], mask[..1], all[1..], mask[1..], new SamplingOptions(4, g, Seed: 3));
        using var b = sampler.Sample(separate, new long[] { 1, 1, 32, 32 }, all[..1], mask[..1], all[1..], mask[1..], new SamplingOptions(4, g, Seed: 3));
        Assert.All(calls, n => Assert.Equal(2, n));
        // Guidance 4 amplifies the float32 difference between batch-of-2 and batch-of-1 convolutions (~1e-6 per forward).
        Assert.True((a - b).abs().max().ToDouble() < 2e-4, $"max |Δ| = {(a - b).abs().max().ToDouble()}");
    }
}
