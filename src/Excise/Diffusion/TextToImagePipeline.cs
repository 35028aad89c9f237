using Excise.Data;
using Excise.Imaging;
using Excise.Models;
using Excise.Models.Vae;
using Excise.Serialization;
using Excise.Text;
using Excise.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Diffusion;

/// <summary>
/// Prompt in, images out: encodes prompts with the frozen text encoder and samples the UNet with guidance
/// (<see cref="DiffusionSampler"/>). With a VAE (a Stable Diffusion pipeline) the UNet samples latents, which are decoded
/// to images after ÷ the VAE's scaling factor, as diffusers' pipelines do.
/// </summary>
public sealed class TextToImagePipeline : IDisposable
{
    readonly UNet2DConditionModel model;
    readonly ITextEncoder encoder;
    readonly DiffusionSampler sampler;
    readonly Device device;
    readonly bool ownsParts;
    readonly AutoencoderKL? decoder;
    readonly SchedulerSampling? schedulerSampling;

    /// <param name="decoder">The VAE that decodes sampled latents to images (on <paramref name="device"/>); null: the UNet samples images itself.</param>
    /// <param name="schedulerSampling">A Stable Diffusion pipeline's scheduler settings, which every sampling call follows (clipping, timesteps, final ᾱ).</param>
    public TextToImagePipeline(UNet2DConditionModel model, ITextEncoder encoder, NoiseSchedule schedule, Device device, bool ownsParts = false,
                               AutoencoderKL? decoder = null, SchedulerSampling? schedulerSampling = null)
    {
        this.model = model;
        this.decoder = decoder;
        this.schedulerSampling = schedulerSampling;
        this.encoder = encoder;
        sampler = new DiffusionSampler(schedule);
        this.device = device;
        this.ownsParts = ownsParts;
    }

    public UNet2DConditionModel Model => model;
    public ITextEncoder Encoder => encoder;
    public NoiseSchedule Schedule => sampler.Schedule;
    public Device Device => device;

    /// <summary>One image per prompt entry; returns [B,C,H,W] in [−1, 1] (with a VAE, RGB at its pixel size).</summary>
    public Tensor Generate(IReadOnlyList<string> prompts, SamplingOptions options)
    {
        model.eval();
        var states = encoder.Encode(prompts.Append("").ToList());
        using var scope = NewDisposeScope();
        var all = tensor(states.States, new long[] { states.Count, states.Length, states.Width }).to(device);
        var mask = tensor(states.Mask, new long[] { states.Count, states.Length }).to(device);
        int n = prompts.Count;
        var cfg = model.Config;
        var shape = new long[] { n, cfg.InChannels, cfg.SampleSize, cfg.SampleSize };
        var images = sampler.Sample(NoisePredictors.Of(model), shape, all[..n], mask[..n], all[n..], mask[n..],
            schedulerSampling?.Apply(options) ?? options, latents: decoder is not null);
        if (decoder is not null)
        {
            decoder.eval();
            using (no_grad()) images = decoder.Decode(images.div(decoder.ScalingFactor)).clamp_(-1, 1);
        }
        return images.MoveToOuterDisposeScope();
    }

    public RasterImage[] GenerateImages(IReadOnlyList<string> prompts, SamplingOptions options)
    {
        using var images = Generate(prompts, options);
        return ImageTensors.FromFloatBatch(images);
    }

    /// <summary>
    /// <paramref name="perPrompt"/> images for each prompt, prompt by prompt, the i-th prompt sampled with seed + i (so
    /// adding a prompt never changes the images of the ones before it); <paramref name="done"/> hears each finished prompt.
    /// </summary>
    public IReadOnlyList<RasterImage[]> GenerateForEachPrompt(IReadOnlyList<string> prompts, int perPrompt, SamplingOptions options, Action<int>? done = null)
    {
        if (perPrompt < 1) throw new ArgumentOutOfRangeException(nameof(perPrompt), perPrompt, "At least one image per prompt.");
        var rows = new List<RasterImage[]>(prompts.Count);
        for (int i = 0; i < prompts.Count; i++)
        {
            rows.Add(GenerateImages(Enumerable.Repeat(prompts[i], perPrompt).ToList(), options with { Seed = options.Seed + i }));
            done?.Invoke(i + 1);
        }
        return rows;
    }

    /// <summary>The images of <see cref="GenerateForEachPrompt"/> as one grid: a row per prompt (up to 8 columns for a single prompt), upscaled 2×.</summary>
    public static RasterImage PromptGrid(IReadOnlyList<RasterImage[]> rows)
    {
        int perPrompt = rows[0].Length;
        return ImageGrid.Compose(rows.SelectMany(r => r).Select(i => i.Upscale(2)).ToList(), rows.Count > 1 ? perPrompt : Math.Min(perPrompt, 8));
    }

    /// <summary>A grid with one row per prompt and <paramref name="perPrompt"/> samples in each row.</summary>
    public RasterImage GenerateGrid(IReadOnlyList<string> prompts, int perPrompt, SamplingOptions options, int maxBatch = 64)
    {
        var expanded = prompts.SelectMany(p => Enumerable.Repeat(p, perPrompt)).ToList();
        var images = new List<RasterImage>();
        for (int start = 0, chunk = 0; start < expanded.Count; start += maxBatch, chunk++)
        {
            var part = expanded.Skip(start).Take(maxBatch).ToList();
            images.AddRange(GenerateImages(part, options with { Seed = options.Seed + chunk }));
        }
        return ImageGrid.Compose(images.Select(i => i.Upscale(2)).ToList(), perPrompt);
    }

    public void Dispose()
    {
        if (!ownsParts) return;
        model.Dispose();
        decoder?.Dispose();
        encoder.Dispose();
    }
}
