using Excise.Configuration;
using System.Text.Json.Serialization;
using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Diffusion;

/// <summary>Predicts the noise ε in x_t given timesteps [B] and text states [B,T,D] with mask [B,T].</summary>
public delegate Tensor NoisePredictor(Tensor sample, Tensor timesteps, Tensor textStates, Tensor? textMask);

public static class NoisePredictors
{
    /// <summary>The UNet's forward pass as the sampler and the trainer call it.</summary>
    public static NoisePredictor Of(Models.UNet2DConditionModel model) => (x, t, states, mask) => model.forward(x, t, states, mask);
}

/// <summary>How the sampler steps from one timestep to the next.</summary>
public enum SamplerKind
{
    /// <summary>DDIM (Song et al., 2021): first order; with η = 0 the deterministic ODE step.</summary>
    [JsonStringEnumMemberName("ddim")] Ddim,
    /// <summary>
    /// DPM-Solver++(2M) (Lu et al., 2022), diffusers' DPMSolverMultistepScheduler and A1111's "DPM++ 2M": second order
    /// from the last two x₀ predictions at no extra model call. On a smooth ODE that buys DDIM's accuracy in fewer
    /// steps; on the demo's model (guidance 3, clipped x₀) it does not at 10–20 steps (docs/performance.md).
    /// </summary>
    [JsonStringEnumMemberName("dpm++2m")] DpmSolver2M,
}

/// <summary>Which training timesteps a sampler visits (diffusers' <c>timestep_spacing</c>).</summary>
public enum TimestepSpacing
{
    /// <summary>0, T/n, 2T/n, … reversed: ends on t = 0, starts short of T − 1 (diffusers' DDIM configs for Stable Diffusion).</summary>
    [JsonStringEnumMemberName("leading")] Leading,
    /// <summary>
    /// n points evenly from T − 1 down, excluding 0 (diffusers' DPMSolverMultistepScheduler default). A multistep solver
    /// needs it: leading spacing ends with a jump from t = T/n to t = 0 across which the second-order extrapolation of
    /// x₀ overshoots (on Gaussian data at 10 steps it made DPM-Solver++ less accurate than DDIM).
    /// </summary>
    [JsonStringEnumMemberName("linspace")] Linspace,
    /// <summary>T − 1, T − 1 − T/n, … down to T/n − 1: starts at the last training timestep (diffusers' "trailing", Lin et al. 2024).</summary>
    [JsonStringEnumMemberName("trailing")] Trailing,
}

public static class SamplerKinds
{
    /// <summary>The spacing each solver is used with in diffusers, unless the options say otherwise.</summary>
    public static TimestepSpacing DefaultSpacing(SamplerKind kind) => kind == SamplerKind.Ddim ? TimestepSpacing.Leading : TimestepSpacing.Linspace;
}

/// <param name="StepsOffset">Added to every timestep of leading spacing (diffusers' <c>steps_offset</c>; 1 in Stable Diffusion's configs).</param>
/// <param name="SetAlphaToOne">Whether the last step goes to ᾱ = 1 (a clean sample) or to ᾱ of timestep 0 (diffusers'
/// <c>set_alpha_to_one</c>; false in Stable Diffusion's PNDM configs).</param>
public sealed record SamplingOptions(
    int Steps = 50,
    double GuidanceScale = 3.0,
    double Eta = 0.0,
    bool ClipSample = true,
    long Seed = 0,
    SamplerKind Sampler = SamplerKind.Ddim,
    TimestepSpacing? Spacing = null,
    int StepsOffset = 0,
    bool SetAlphaToOne = true)
{
    public TimestepSpacing EffectiveSpacing => Spacing ?? SamplerKinds.DefaultSpacing(Sampler);

    public void Validate()
    {
        if (Steps < 1) throw new ArgumentException($"sampling steps must be at least 1 (got {Steps}).");
        if (GuidanceScale < 0) throw new ArgumentException($"guidance scale must be non-negative (got {GuidanceScale}).");
        if (Eta < 0 || Eta > 1) throw new ArgumentException($"eta must be within [0, 1] (got {Eta}).");
        if (StepsOffset < 0) throw new ArgumentException($"the steps offset must be non-negative (got {StepsOffset}).");
        if (Eta != 0 && Sampler != SamplerKind.Ddim)
            throw new ArgumentException($"eta (stochastic sampling) applies to the ddim sampler only (got eta {Eta} with {Sampler.ToName()}).");
    }
}

/// <summary>
/// What a Stable Diffusion pipeline's scheduler config decides about sampling, which a run's sampling then follows
/// whatever solver it uses: whether x₀ is clipped (never, for latents in SD's configs), where the timesteps fall, and
/// where the last step ends. A null spacing leaves the solver's own default.
/// </summary>
public sealed record SchedulerSampling(bool ClipSample, TimestepSpacing? Spacing, int StepsOffset, bool SetAlphaToOne)
{
    public SamplingOptions Apply(SamplingOptions options) =>
        options with { ClipSample = ClipSample, Spacing = Spacing ?? options.Spacing, StepsOffset = StepsOffset, SetAlphaToOne = SetAlphaToOne };
}

/// <summary>
/// Samples a text-conditioned UNet with classifier-free guidance, following diffusers' defaults: ᾱ = 1 after the
/// last step, optional x₀ clipping to [−1, 1], "leading" timesteps for DDIM and "linspace" for DPM-Solver++. The
/// conditional and unconditional passes share one batched forward. Both solvers clip the same x₀, and on the same
/// timesteps the first-order step of DPM-Solver++ is exactly DDIM's; the second-order one adds a correction from
/// the previous x₀.
/// </summary>
public sealed class DiffusionSampler
{
    readonly NoiseSchedule schedule;

    public DiffusionSampler(NoiseSchedule schedule) => this.schedule = schedule;

    public NoiseSchedule Schedule => schedule;

    /// <param name="stepsOffset">diffusers' <c>steps_offset</c>, which it adds to leading spacing only.</param>
    public int[] Timesteps(int steps, TimestepSpacing spacing = TimestepSpacing.Leading, int stepsOffset = 0)
    {
        int t = schedule.TrainTimesteps;
        if (steps > t) throw new ArgumentException($"sampling steps ({steps}) cannot exceed the training timesteps ({t}).");
        switch (spacing)
        {
            case TimestepSpacing.Linspace:
                return Enumerable.Range(0, steps).Select(i => (int)Math.Round((t - 1) * (1.0 - (double)i / steps))).ToArray();
            case TimestepSpacing.Trailing:
                return Enumerable.Range(0, steps).Select(i => (int)Math.Round(t - i * ((double)t / steps), MidpointRounding.ToEven) - 1).ToArray();
            default:
                int ratio = t / steps;
                if ((steps - 1) * ratio + stepsOffset > t - 1)
                    throw new ArgumentException($"a steps offset of {stepsOffset} puts the first of {steps} leading timesteps past the last training timestep ({t - 1}).");
                return Enumerable.Range(0, steps).Select(i => i * ratio + stepsOffset).Reverse().ToArray();
        }
    }

    /// <summary>
    /// Samples one image per row of <paramref name="textStates"/>; returns [B,C,H,W] (detached, caller owns it), in
    /// [−1, 1] when the UNet samples pixels.
    /// </summary>
    /// <param name="latents">The UNet samples a VAE's latents, which are returned as they are: clamping them to the
    /// pixel range would cut off much of what Stable Diffusion's latents hold (they have unit variance).</param>
    public Tensor Sample(NoisePredictor predict, long[] sampleShape, Tensor textStates, Tensor textMask,
                         Tensor unconditionalStates, Tensor unconditionalMask, SamplingOptions options, bool latents = false)
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

        var ts = Timesteps(options.Steps, options.EffectiveSpacing, options.StepsOffset);
        var alphas = schedule.AlphasCumprod;
        double finalAlphaBar = options.SetAlphaToOne ? 1.0 : alphas[0];
        Tensor? previousX0 = null;
        double previousLambda = 0;
        for (int i = 0; i < ts.Length; i++)
        {
            using var stepScope = NewDisposeScope();
            int t = ts[i];
            int prev = i + 1 < ts.Length ? ts[i + 1] : -1;
            double aT = alphas[t], aPrev = prev >= 0 ? alphas[prev] : finalAlphaBar;

            var modelInput = guided ? cat(new[] { x, x }, 0) : x;
            var tTensor = full(new long[] { modelInput.shape[0] }, (float)t, device: device);
            var eps = predict(modelInput, tTensor, context, mask);
            if (guided)
            {
                var parts = eps.chunk(2, 0);
                eps = parts[0] + options.GuidanceScale * (parts[1] - parts[0]);
            }
            // Guidance is linear in the model's output, so mixing v and then converting equals converting each half:
            // ε = √ᾱ·v + √(1 − ᾱ)·x_t inverts v = √ᾱ·ε − √(1 − ᾱ)·x₀ given x_t = √ᾱ·x₀ + √(1 − ᾱ)·ε.
            if (schedule.Options.PredictionType == PredictionType.VPrediction)
                eps = Math.Sqrt(aT) * eps + Math.Sqrt(1 - aT) * x;

            var x0 = (x - Math.Sqrt(1 - aT) * eps) / Math.Sqrt(aT);
            if (options.ClipSample) x0 = x0.clamp(-1, 1);
            double lambda = LogSignalToNoise(aT);

            Tensor next;
            if (options.Sampler == SamplerKind.DpmSolver2M)
            {
                // Data-prediction form: x_s = (σ_s/σ_t)·x_t + (α_s − σ_s·α_t/σ_t)·D, where D is x₀ (first order) or
                // x₀ + (x₀ − x₀_prev)·h/(2·h_prev) (second order). The first step has no previous x₀, and the last
                // (to ᾱ = 1, where h is infinite) stays first order, as diffusers does with final_sigmas_type "zero".
                var direction = x0;
                if (previousX0 is not null && prev >= 0)
                {
                    double h = LogSignalToNoise(aPrev) - lambda, hPrevious = lambda - previousLambda;
                    direction = x0 + (x0 - previousX0) * (h / (2 * hPrevious));
                }
                next = FirstOrderStep(x, direction, aT, aPrev);
                previousX0?.Dispose();
                previousX0 = x0.MoveToOuterDisposeScope();
                previousLambda = lambda;
            }
            else
            {
                // DDIM with η: the deterministic part is the same first-order step; η adds fresh noise of variance σ².
                double sigma = options.Eta * Math.Sqrt((1 - aPrev) / (1 - aT) * (1 - aT / aPrev));
                if (options.ClipSample) eps = (x - Math.Sqrt(aT) * x0) / Math.Sqrt(1 - aT);
                next = Math.Sqrt(aPrev) * x0 + Math.Sqrt(Math.Max(1 - aPrev - sigma * sigma, 0)) * eps;
                if (sigma > 0) next = next + sigma * randn(sampleShape, generator: generator, device: device);
            }
            var previous = x;
            x = next.MoveToOuterDisposeScope();
            previous.Dispose();
        }
        previousX0?.Dispose();
        // clamp keeps NaN, and a NaN pixel becomes black in a PNG: a model or guidance that diverged would otherwise
        // write a folder of black images and let every judge score them.
        if (!x.isfinite().all().item<bool>())
            throw new InvalidOperationException($"Sampling produced non-finite pixels ({options.Sampler.ToName()}, {options.Steps} steps, guidance {options.GuidanceScale}): "
                                                + "the model's weights or its predictions are NaN or infinite; check the run's loss in metrics.jsonl.");
        return (latents ? x : x.clamp(-1, 1)).MoveToOuterDisposeScope();
    }

    /// <summary>λ = log(α/σ) with α = √ᾱ, σ = √(1 − ᾱ): DPM-Solver's time variable.</summary>
    static double LogSignalToNoise(double alphaBar) => 0.5 * (Math.Log(alphaBar) - Math.Log(1 - alphaBar));

    /// <summary>The deterministic step from ᾱ_t to ᾱ_s towards x₀ = <paramref name="direction"/> (DDIM with η = 0).</summary>
    static Tensor FirstOrderStep(Tensor x, Tensor direction, double alphaBarT, double alphaBarS)
    {
        double sigmaT = Math.Sqrt(1 - alphaBarT), sigmaS = Math.Sqrt(1 - alphaBarS);
        return (sigmaS / sigmaT) * x + (Math.Sqrt(alphaBarS) - sigmaS * Math.Sqrt(alphaBarT) / sigmaT) * direction;
    }
}
