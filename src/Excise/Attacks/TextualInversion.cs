using System.Diagnostics;
using Excise.Data;
using Excise.Diffusion;
using Excise.Imaging;
using Excise.Torch;
using Excise.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Excise.Attacks;

/// <summary>The learned token: <see cref="InversionSettings.Vectors"/> rows of text-encoder states [V,D] (detached, owned here).</summary>
public sealed class LearnedToken : IDisposable
{
    public Tensor Vectors { get; }
    public InversionSettings Settings { get; }
    public LearnedToken(Tensor vectors, InversionSettings settings) { Vectors = vectors; Settings = settings; }
    public void Dispose() => Vectors.Dispose();
}

/// <summary>How the inversion went: the loss on fixed (timestep, noise) draws before and after, every step's batch loss, timing.</summary>
public sealed record InversionReport(
    IReadOnlyList<string> HeldOutIds,
    IReadOnlyList<int?> HeldOutClasses,
    IReadOnlyList<string> TrainingPrompts,
    double InitialLoss,
    double FinalLoss,
    IReadOnlyList<double> StepLosses,
    double InitialVectorNorm,
    double VectorChangeNorm,
    TimeSpan LearnTime,
    double SecondsPerStep);

/// <summary>
/// Textual inversion against a frozen victim (Gal et al., 2022), adapted to a model conditioned on a frozen
/// contextual encoder: the learned vectors replace the encoder's output states at the placeholder's token positions
/// (and nothing before the encoder), and are fitted by Adam to the victim's own DDPM loss, ε-prediction MSE at random
/// timesteps, on images that carry the concept. The UNet's parameters are switched to requires_grad = false for the
/// duration, so no gradient reaches them and they are bit-identical afterwards.
/// </summary>
public static class TextualInversion
{
    const long StepStream = 0x696e76, EvaluationStream = 0x696e76 + 1;

    /// <summary>Replaces the states at the one-hot positions [B,T,V] with the vectors [V,D]; sets their mask to 1.</summary>
    public static (Tensor States, Tensor Mask) Insert(Tensor states, Tensor mask, Tensor oneHot, Tensor vectors)
    {
        var selected = oneHot.sum(-1, keepdim: true);
        return (states * (1 - selected) + oneHot.matmul(vectors), maximum(mask, selected.squeeze(-1)));
    }

    /// <summary>[B,T,V] with a one at (b, position of vector v in prompt b, v).</summary>
    public static Tensor OneHot(IReadOnlyList<PlaceholderPrompt> prompts, int length, int vectors, Device device)
    {
        var values = new float[prompts.Count * length * vectors];
        for (int b = 0; b < prompts.Count; b++)
            for (int v = 0; v < vectors; v++)
                values[(b * length + prompts[b].Positions[v]) * vectors + v] = 1f;
        return tensor(values, new long[] { prompts.Count, length, vectors }).to(device);
    }

    /// <summary>Encodes placeholder prompts and puts the learned vectors in; usable as a sampling conditioner.</summary>
    public static PromptConditioner Conditioner(Victim victim, LearnedToken token, IReadOnlyDictionary<string, PlaceholderPrompt> byText) => texts =>
    {
        var (states, mask) = AttackImageSampler.EncoderConditioner(victim)(texts);
        var prompts = texts.Select(t => byText[t]).ToList();
        var oneHot = OneHot(prompts, (int)states.shape[1], token.Settings.Vectors, victim.Device);
        return Insert(states, mask, oneHot, token.Vectors.to(victim.Device));
    };

    public static (LearnedToken Token, InversionReport Report) Learn(Victim victim, IReadOnlyList<TrainingExample> examples,
        InversionSettings settings, long seed, Action<int, int, double>? progress = null, CancellationToken cancel = default)
    {
        settings.Validate();
        if (examples.Count == 0) throw new ArgumentException("inversion needs at least one image carrying the concept.");
        var model = victim.Model;
        var cfg = model.Config;
        var device = victim.Device;
        var prompts = examples.Select(e => PlaceholderPrompt.Build(settings, e.ClassLabel, victim.Encoder.Tokenizer, victim.Encoder.MaxLength)).ToList();
        var clock = Stopwatch.StartNew();

        using var outer = NewDisposeScope();
        var images = DenoisingObjective.ToModelRange(
            ImageTensors.ToUint8Batch(examples.Select(e => e.Image.FitTo(cfg.SampleSize, cfg.InChannels)).ToList()).to(device));
        var (states, mask) = AttackImageSampler.EncoderConditioner(victim)(prompts.Select(p => p.Text).ToList());
        int length = (int)states.shape[1];
        var oneHot = OneHot(prompts, length, settings.Vectors, device);
        var initial = InitialVectors(settings, states, mask, oneHot);

        var wasTrainable = model.parameters().Select(p => (Param: p, Flag: p.requires_grad)).ToList();
        foreach (var (p, _) in wasTrainable) p.requires_grad = false;
        model.eval();
        try
        {
            var vectors = new Parameter(initial.clone(), requires_grad: true);
            double initialLoss = EvaluationLoss(victim, images, states, mask, oneHot, initial, settings, seed);
            var losses = new List<double>(settings.Steps);
            using (var adam = optim.Adam(new[] { vectors }, settings.LearningRate))
            {
                // The adversary may train only where the concept is decided (a band of noise levels); the before/after loss stays uniform.
                int firstTimestep = (int)Math.Floor(settings.TimestepLow * (victim.Schedule.TrainTimesteps - 1));
                int lastTimestep = (int)Math.Ceiling(settings.TimestepHigh * (victim.Schedule.TrainTimesteps - 1));
                var learnClock = Stopwatch.StartNew();
                for (int step = 0; step < settings.Steps; step++)
                {
                    cancel.ThrowIfCancellationRequested();
                    using var scope = NewDisposeScope();
                    using var generator = new Generator(SeedMixer.Derive(seed, StepStream, step), device);
                    var index = settings.BatchSize >= examples.Count
                        ? arange(examples.Count, dtype: ScalarType.Int64, device: device)
                        : randperm(examples.Count, generator: generator, device: device)[..settings.BatchSize];
                    var x0 = images.index_select(0, index);
                    var t = randint(firstTimestep, lastTimestep + 1, new long[] { x0.shape[0] }, generator: generator, device: device);
                    var noise = randn(x0.shape, generator: generator, device: device);
                    var (cond, condMask) = Insert(states.index_select(0, index), mask.index_select(0, index), oneHot.index_select(0, index), vectors);
                    var loss = DenoisingObjective.Loss(NoisePredictors.Of(model), victim.Schedule, x0, noise, t, cond, condMask);
                    adam.zero_grad();
                    loss.backward();
                    adam.step();
                    double value = loss.ToDouble();
                    if (!double.IsFinite(value))
                        throw new InvalidOperationException($"inversion diverged: loss {value} at step {step + 1}; lower the learning rate (now {settings.LearningRate}).");
                    losses.Add(value);
                    progress?.Invoke(step + 1, settings.Steps, value);
                }
                learnClock.Stop();
                var learned = vectors.detach().clone();
                double finalLoss = EvaluationLoss(victim, images, states, mask, oneHot, learned, settings, seed);
                var report = new InversionReport(
                    examples.Select(e => e.Id).ToList(), examples.Select(e => e.ClassLabel).ToList(), prompts.Select(p => p.Display).ToList(),
                    initialLoss, finalLoss, losses,
                    initial.norm().ToDouble(), (learned - initial).norm().ToDouble(),
                    clock.Elapsed, settings.Steps > 0 ? learnClock.Elapsed.TotalSeconds / settings.Steps : 0);
                return (new LearnedToken(learned.DetachFromDisposeScope(), settings), report);
            }
        }
        finally
        {
            foreach (var (p, flag) in wasTrainable) p.requires_grad = flag;
        }
    }

    static Tensor InitialVectors(InversionSettings settings, Tensor states, Tensor mask, Tensor oneHot)
    {
        using var _ = no_grad();
        if (settings.Init == InversionInit.PlaceholderWord)
        {
            // [B,V,D]: each vector's placeholder state in each prompt, averaged over the prompts.
            var perPrompt = oneHot.transpose(1, 2).matmul(states);
            return perPrompt.mean(new long[] { 0 });
        }
        var weights = mask.unsqueeze(-1);
        var mean = (states * weights).sum(new long[] { 0, 1 }) / weights.sum();
        return mean.unsqueeze(0).expand(settings.Vectors, -1).contiguous();
    }

    /// <summary>The victim's denoising loss on the held-out images at fixed (timestep, noise) draws: comparable before and after.</summary>
    static double EvaluationLoss(Victim victim, Tensor images, Tensor states, Tensor mask, Tensor oneHot, Tensor vectors, InversionSettings settings, long seed)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var device = victim.Device;
        int n = (int)images.shape[0], draws = settings.EvaluationDraws;
        using var generator = new Generator(SeedMixer.Derive(seed, EvaluationStream, 0), device);
        var index = arange(n, dtype: ScalarType.Int64, device: device).repeat(draws);
        var t = randint(0, victim.Schedule.TrainTimesteps, new long[] { n * draws }, generator: generator, device: device);
        var noise = randn(new long[] { n * draws, images.shape[1], images.shape[2], images.shape[3] }, generator: generator, device: device);
        double total = 0;
        for (int start = 0; start < n * draws; start += settings.BatchSize)
        {
            using var batchScope = NewDisposeScope();
            int count = Math.Min(settings.BatchSize, n * draws - start);
            var rows = index[start..(start + count)];
            var eps = noise[start..(start + count)];
            var tt = t[start..(start + count)];
            var (cond, condMask) = Insert(states.index_select(0, rows), mask.index_select(0, rows), oneHot.index_select(0, rows), vectors);
            // The batch's mean loss weighted by its size: the last batch may be smaller.
            total += DenoisingObjective.Loss(NoisePredictors.Of(victim.Model), victim.Schedule, images.index_select(0, rows), eps, tt, cond, condMask).ToDouble() * count;
        }
        return total / ((double)n * draws);
    }
}
