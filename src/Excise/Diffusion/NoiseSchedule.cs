using System.Text.Json.Serialization;
using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Diffusion;

public enum BetaSchedule { Linear, ScaledLinear, Cosine }

/// <summary>What the network is trained to predict (diffusers' <c>prediction_type</c>, spelt as there).</summary>
public enum PredictionType
{
    /// <summary>The noise ε that was added (DDPM; Stable Diffusion 1.x and 2.x-base).</summary>
    [JsonStringEnumMemberName("epsilon")] Epsilon,

    /// <summary>v = √ᾱ·ε − √(1 − ᾱ)·x₀ (Salimans &amp; Ho, 2022; Stable Diffusion 2.x at 768 px).</summary>
    [JsonStringEnumMemberName("v_prediction")] VPrediction,
}

/// <param name="PredictionType">Epsilon unless a model was trained otherwise. RunConfig.Hash leaves it out at its default,
/// so runs made before it existed keep their hashes.</param>
public sealed record NoiseScheduleOptions(
    BetaSchedule Schedule = BetaSchedule.Linear,
    int TrainTimesteps = 1000,
    double BetaStart = 1e-4,
    double BetaEnd = 0.02,
    PredictionType PredictionType = PredictionType.Epsilon)
{
    public void Validate()
    {
        if (TrainTimesteps < 2) throw new ArgumentException($"diffusion.train_timesteps must be at least 2 (got {TrainTimesteps}).");
        if (Schedule != BetaSchedule.Cosine && !(BetaStart > 0 && BetaEnd > BetaStart && BetaEnd < 1))
            throw new ArgumentException($"diffusion.beta_start/beta_end must satisfy 0 < start < end < 1 (got {BetaStart}, {BetaEnd}).");
    }
}

/// <summary>
/// The DDPM forward process q(x_t | x_0) = N(sqrt(ᾱ_t) x_0, (1 − ᾱ_t) I), with the beta schedules of
/// diffusers' DDPMScheduler ("linear", "scaled_linear", "squaredcos_cap_v2").
/// ᾱ is kept in float64 on the host and as a float32 tensor for batched gathers. (diffusers computes the betas in
/// float32; the float64 values here differ from its by float32 rounding, about 1e-7 relative.)
/// </summary>
public sealed class NoiseSchedule
{
    public NoiseScheduleOptions Options { get; }
    public int TrainTimesteps => Options.TrainTimesteps;
    /// <summary>ᾱ_t for t = 0 … T−1.</summary>
    public IReadOnlyList<double> AlphasCumprod { get; }

    public NoiseSchedule(NoiseScheduleOptions options)
    {
        options.Validate();
        Options = options;
        var betas = Betas(options);
        var cumprod = new double[betas.Length];
        double running = 1.0;
        for (int t = 0; t < betas.Length; t++) { running *= 1.0 - betas[t]; cumprod[t] = running; }
        AlphasCumprod = cumprod;
    }

    static double[] Betas(NoiseScheduleOptions o)
    {
        int n = o.TrainTimesteps;
        var betas = new double[n];
        switch (o.Schedule)
        {
            case BetaSchedule.Linear:
                for (int i = 0; i < n; i++) betas[i] = o.BetaStart + (o.BetaEnd - o.BetaStart) * i / (n - 1);
                break;
            case BetaSchedule.ScaledLinear:
                double a = Math.Sqrt(o.BetaStart), b = Math.Sqrt(o.BetaEnd);
                for (int i = 0; i < n; i++) { double s = a + (b - a) * i / (n - 1); betas[i] = s * s; }
                break;
            case BetaSchedule.Cosine:
                // Nichol & Dhariwal (2021); betas capped at 0.999 to avoid a singular last step.
                static double AlphaBar(double t) => Math.Pow(Math.Cos((t + 0.008) / 1.008 * Math.PI / 2), 2);
                for (int i = 0; i < n; i++)
                    betas[i] = Math.Min(1 - AlphaBar((i + 1.0) / n) / AlphaBar((double)i / n), 0.999);
                break;
        }
        return betas;
    }

    /// <summary>x_t = sqrt(ᾱ_t)·x_0 + sqrt(1 − ᾱ_t)·ε, for a batch of integer timesteps.</summary>
    public Tensor AddNoise(Tensor cleanSamples, Tensor noise, Tensor timesteps)
    {
        var alphaBar = AlphaBarAt(timesteps, cleanSamples.device);
        return alphaBar.sqrt() * cleanSamples + (1 - alphaBar).sqrt() * noise;
    }

    /// <summary>v = √ᾱ_t·ε − √(1 − ᾱ_t)·x₀ (diffusers' <c>get_velocity</c>), the target of a v-prediction model.</summary>
    public Tensor Velocity(Tensor cleanSamples, Tensor noise, Tensor timesteps)
    {
        var alphaBar = AlphaBarAt(timesteps, cleanSamples.device);
        return alphaBar.sqrt() * noise - (1 - alphaBar).sqrt() * cleanSamples;
    }

    /// <summary>ᾱ at each of a batch of integer timesteps, shaped [B,1,1,1] to broadcast over images.</summary>
    Tensor AlphaBarAt(Tensor timesteps, Device device)
    {
        using var table = tensor(AlphasCumprod.Select(v => (float)v).ToArray(), device: device);
        return table.index_select(0, timesteps.to(ScalarType.Int64)).view(-1, 1, 1, 1);
    }
}
