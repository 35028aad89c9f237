using Excise.Data;
using Excise.Imaging;
using Excise.Models;
using Excise.Serialization;
using Excise.Text;
using Excise.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Diffusion;

/// <summary>Prompt in, images out: encodes prompts with the frozen text encoder and samples the UNet with guidance (<see cref="DiffusionSampler"/>).</summary>
public sealed class TextToImagePipeline : IDisposable
{
    readonly UNet2DConditionModel model;
    readonly ITextEncoder encoder;
    readonly DiffusionSampler sampler;
    readonly Device device;
    readonly bool ownsParts;

    public TextToImagePipeline(UNet2DConditionModel model, ITextEncoder encoder, NoiseSchedule schedule, Device device, bool ownsParts = false)
    {
        this.model = model;
        this.encoder = encoder;
        sampler = new DiffusionSampler(schedule);
        this.device = device;
        this.ownsParts = ownsParts;
    }

    public UNet2DConditionModel Model => model;
    public ITextEncoder Encoder => encoder;
    public NoiseSchedule Schedule => sampler.Schedule;
    public Device Device => device;

    /// <summary>One image per prompt entry; returns [B,C,H,W] in [−1, 1].</summary>
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
        var images = sampler.Sample(NoisePredictors.Of(model), shape, all[..n], mask[..n], all[n..], mask[n..], options);
        return images.MoveToOuterDisposeScope();
    }

    public RasterImage[] GenerateImages(IReadOnlyList<string> prompts, SamplingOptions options)
    {
        using var images = Generate(prompts, options);
        return ImageTensors.FromFloatBatch(images);
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
        encoder.Dispose();
    }
}
