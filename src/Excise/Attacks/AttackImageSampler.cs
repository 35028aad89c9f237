using Excise.Data;
using Excise.Diffusion;
using Excise.Imaging;
using Excise.Torch;
using Excise.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Attacks;

/// <summary>One generated image and where it came from.</summary>
/// <param name="BatchSeed">The DDIM seed of the sampling batch the image was drawn in.</param>
/// <param name="BatchPosition">The image's row in that batch (its initial noise is row <c>BatchPosition</c> of the batch's draw).</param>
public sealed record AttackImage(RasterImage Image, int PromptIndex, string Prompt, int? ClassLabel, int Replicate, long BatchSeed, int BatchPosition)
{
    public string FileName => $"p{PromptIndex:D3}-{Replicate:D3}.png";
}

/// <summary>Text states [B,T,D] and mask [B,T] for a batch of prompts, on the victim's device.</summary>
public delegate (Tensor States, Tensor Mask) PromptConditioner(IReadOnlyList<string> prompts);

/// <summary>
/// Samples <c>ImagesPerPrompt</c> images for every prompt in batches of <c>BatchSize</c> with DDIM and guidance.
/// Batch b is seeded from (seed, b), so results depend only on the prompts and the settings; each batch runs in its
/// own dispose scope, so memory stays flat however many images are asked for.
/// </summary>
public static class AttackImageSampler
{
    const long SamplingSeedStream = 0x61747461636b;   // keeps attack seeds apart from training's streams

    public static PromptConditioner EncoderConditioner(Victim victim) => prompts =>
    {
        var states = victim.Encoder.Encode(prompts);
        return (tensor(states.States, new long[] { states.Count, states.Length, states.Width }).to(victim.Device),
                tensor(states.Mask, new long[] { states.Count, states.Length }).to(victim.Device));
    };

    public static long BatchSeed(long seed, int batch) => (long)(SeedMixer.Derive(seed, SamplingSeedStream, batch) >> 1);

    public static List<AttackImage> Sample(Victim victim, IReadOnlyList<string> conditioningPrompts, IReadOnlyList<AttackPrompt> prompts,
        AttackSettings settings, PromptConditioner conditioner, Action<int, int>? progress = null, CancellationToken cancel = default)
    {
        if (conditioningPrompts.Count != prompts.Count) throw new ArgumentException("One conditioning prompt per attack prompt is needed.");
        var jobs = prompts.SelectMany((p, i) => Enumerable.Range(0, settings.ImagesPerPrompt).Select(r => (Prompt: i, Replicate: r))).ToList();
        var sampler = new DiffusionSampler(victim.Schedule);
        var cfg = victim.Model.Config;
        var images = new List<AttackImage>(jobs.Count);
        victim.Model.eval();
        using var unconditionalScope = NewDisposeScope();
        var (uncondStates, uncondMask) = EncoderConditioner(victim)([""]);
        for (int start = 0, batch = 0; start < jobs.Count; start += settings.BatchSize, batch++)
        {
            cancel.ThrowIfCancellationRequested();
            var part = jobs.Skip(start).Take(settings.BatchSize).ToList();
            long seed = BatchSeed(settings.Seed, batch);
            RasterImage[] drawn;
            using (var scope = NewDisposeScope())
            {
                var (states, mask) = conditioner(part.Select(j => conditioningPrompts[j.Prompt]).ToList());
                var shape = new long[] { part.Count, cfg.InChannels, cfg.SampleSize, cfg.SampleSize };
                var options = new SamplingOptions(settings.SamplingSteps, settings.GuidanceScale, Seed: seed, Sampler: settings.Sampler);
                using var x = sampler.Sample(NoisePredictors.Of(victim.Model), shape, states, mask, uncondStates, uncondMask, options);
                drawn = ImageTensors.FromFloatBatch(x);
            }
            for (int k = 0; k < part.Count; k++)
            {
                var (p, r) = part[k];
                images.Add(new AttackImage(drawn[k], p, prompts[p].Text, prompts[p].ClassLabel, r, seed, k));
            }
            progress?.Invoke(images.Count, jobs.Count);
        }
        return images;
    }
}
