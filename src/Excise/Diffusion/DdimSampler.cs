using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Diffusion;

/// <summary>Predicts the noise ε in x_t given timesteps [B] and text states [B,T,D] with mask [B,T].</summary>
public delegate Tensor NoisePredictor(Tensor sample, Tensor timesteps, Tensor textStates, Tensor? textMask);

public sealed record SamplingOptions(
    int Steps = 50,
    double GuidanceScale = 3.0,
    double Eta = 0.0,
    bool ClipSample = true,
    long Seed = 0)
{
    public void Validate()
    {
        if (Steps < 1) throw new ArgumentException($"sampling steps must be at least 1 (got {Steps}).");
        if (GuidanceScale < 0) throw new ArgumentException($"guidance scale must be non-negative (got {GuidanceScale}).");
        if (Eta < 0 || Eta > 1) throw new ArgumentException($"eta must be within [0, 1] (got {Eta}).");
    }
}

/// <summary>
/// DDIM (Song et al., 2021) with classifier-free guidance, following diffusers' DDIMScheduler defaults:
/// "leading" timestep spacing, ᾱ_prev = 1 at the last step, optional x_0 clipping to [−1, 1].
/// The conditional and unconditional passes share one batched forward.
/// </summary>
public sealed class DdimSampler
{
    readonly NoiseSchedule schedule;

    public DdimSampler(NoiseSchedule schedule) => this.schedule = schedule;

    public NoiseSchedule Schedule => schedule;

    public int[] Timesteps(int steps)
    {
        int t = schedule.TrainTimesteps;
        if (steps > t) throw new ArgumentException($"sampling steps ({steps}) cannot exceed the training timesteps ({t}).");
        int ratio = t / steps;
        return Enumerable.Range(0, steps).Select(i => i * ratio).Reverse().ToArray();
    }

    /// <summary>
    /// Samples one image per row of <paramref name="textStates"/>; returns [B,C,H,W] in [−1, 1] (detached, caller owns it).
    /// </summary>
    public Tensor Sample(NoisePredictor predict, long[] sampleShape, Tensor textStates, Tensor textMask,
                         Tensor unconditionalStates, Tensor unconditionalMask, SamplingOptions options)
    {
        options.Validate();
        var device = textStates.device;
        using var outer = NewDisposeScope();
        using var noGrad = no_grad();
        int batch = (int)sampleShape[0];
        var generator = new Generator((ulong)options.Seed, device);
        var x = randn(sampleShape, generator: generator, device: device);

        bool guided = options.GuidanceScale != 1.0;
        Tensor context = textStates, mask = textMask;
        if (guided)
        {
            var uncond = unconditionalStates.expand(batch, -1, -1);
            var uncondMask = unconditionalMask.expand(batch, -1);
            context = cat(new[] { uncond, textStates }, 0);
            mask = cat(new[] { uncondMask, textMask }, 0);
        }

        var ts = Timesteps(options.Steps);
        var alphas = schedule.AlphasCumprod;
        for (int i = 0; i < ts.Length; i++)
        {
            using var stepScope = NewDisposeScope();
            int t = ts[i];
            int prev = i + 1 < ts.Length ? ts[i + 1] : -1;
            double aT = alphas[t], aPrev = prev >= 0 ? alphas[prev] : 1.0;

            var modelInput = guided ? cat(new[] { x, x }, 0) : x;
            var tTensor = full(new long[] { modelInput.shape[0] }, (float)t, device: device);
            var eps = predict(modelInput, tTensor, context, mask);
            if (guided)
            {
                var parts = eps.chunk(2, 0);
                eps = parts[0] + options.GuidanceScale * (parts[1] - parts[0]);
            }

            var x0 = (x - Math.Sqrt(1 - aT) * eps) / Math.Sqrt(aT);
            if (options.ClipSample)
            {
                x0 = x0.clamp(-1, 1);
                eps = (x - Math.Sqrt(aT) * x0) / Math.Sqrt(1 - aT);
            }
            double sigma = options.Eta * Math.Sqrt((1 - aPrev) / (1 - aT) * (1 - aT / aPrev));
            var next = Math.Sqrt(aPrev) * x0 + Math.Sqrt(Math.Max(1 - aPrev - sigma * sigma, 0)) * eps;
            if (sigma > 0) next = next + sigma * randn(sampleShape, generator: generator, device: device);
            var previous = x;
            x = next.MoveToOuterDisposeScope();
            previous.Dispose();
        }
        return x.clamp(-1, 1).MoveToOuterDisposeScope();
    }
}
