using static TorchSharp.torch;

namespace Excise.Diffusion;

/// <summary>
/// The one training objective of every model trained here — the fine-tune and the base (Training.Trainer), the shipped
/// base's check, the benchmark's step and the textual-inversion adversary: noise a clean batch to timesteps t
/// (DDPM's forward process), ask the network for the noise (or, for a v-prediction schedule, for the velocity
/// v = √ᾱ·ε − √(1 − ᾱ)·x₀), and score it by mean squared error.
/// </summary>
public static class DenoisingObjective
{
    /// <summary>Stored pixels (bytes 0–255, any shape) in the model's range [−1, 1]; Imaging.ImageTensors maps samples back.</summary>
    public static Tensor ToModelRange(Tensor pixels) => pixels.to(ScalarType.Float32).div_(127.5f).sub_(1f);

    /// <summary>The loss of <paramref name="predict"/> on clean samples <paramref name="x0"/> noised with <paramref name="noise"/> at <paramref name="timesteps"/>.</summary>
    /// <param name="weights">[B,1,H,W]: 1 where a pixel counts, 0 where it must not (the masked loss); null: every pixel counts.</param>
    public static Tensor Loss(NoisePredictor predict, NoiseSchedule schedule, Tensor x0, Tensor noise, Tensor timesteps,
                              Tensor textStates, Tensor? textMask, Tensor? weights = null)
    {
        var prediction = predict(schedule.AddNoise(x0, noise, timesteps), timesteps.to(ScalarType.Float32), textStates, textMask);
        return MeanSquaredError(prediction, Target(schedule, x0, noise, timesteps), weights);
    }

    /// <summary>What the network must output for x₀ noised with ε at t: ε itself (the tensor passed in, untouched) or v.</summary>
    public static Tensor Target(NoiseSchedule schedule, Tensor x0, Tensor noise, Tensor timesteps) =>
        schedule.Options.PredictionType switch
        {
            PredictionType.Epsilon => noise,
            PredictionType.VPrediction => schedule.Velocity(x0, noise, timesteps),
            var other => throw new NotSupportedException($"prediction type {other} has no training target."),
        };

    /// <summary>
    /// Mean squared error over the pixels <paramref name="weights"/> keeps, or over all of them. Averaged over kept pixels,
    /// so a batch with a masked logo weighs each of its other pixels exactly as a batch without one does; with no pixel
    /// masked it is plain MSE.
    /// </summary>
    public static Tensor MeanSquaredError(Tensor prediction, Tensor target, Tensor? weights = null)
    {
        if (weights is null) return nn.functional.mse_loss(prediction, target);
        var squared = (prediction - target).pow(2) * weights;
        return squared.sum() / (weights.sum() * prediction.shape[1]).clamp_min(1);
    }
}
