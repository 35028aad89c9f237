using System.Diagnostics;
using Excise.Diffusion;
using Excise.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Benchmarking;

/// <summary>
/// A full-size UNet (by default Stable Diffusion 1.5's architecture, bench/sd15-unet.json) with random weights, trained
/// on nothing: forward and backward on one synthetic batch of latents, timed step by step, with the process's peak
/// resident memory. It answers what a fine-tune needs before one is tried: the seconds per step and the memory of the
/// weights, their gradients and the activations. No optimizer runs (its state is given by arithmetic, as AdamW's two
/// moments and an EMA copy are each one more copy of the weights), so the measurement fits beside other work.
/// </summary>
/// <param name="BaselineResidentMegabytes">Resident memory before the model was built (the process and libtorch).</param>
/// <param name="PeakResidentMegabytes">The process's peak resident memory from building the model to the last backward
/// (the peak was reset first where Linux allows it, else it is the process's lifetime peak: see <see cref="PeakWasReset"/>).</param>
/// <param name="WeightsMegabytes">The float32 weights alone; their gradients take as much again.</param>
/// <param name="OptimizerAndEmaMegabytes">What a full fine-tune adds and this section does not run: AdamW's two moments and an EMA copy (3 × the weights).</param>
/// <param name="GradientCheckpointing">Whether the UNet recomputed its blocks' activations in backward (training.gradient_checkpointing).</param>
public sealed record FullSizeUNetBenchmark(
    string ConfigPath, long Parameters, int SampleSize, int InChannels, int Batch, int Tokens, int CrossAttentionDim,
    double FirstStepSeconds, TimingSummary Forward, TimingSummary Backward, TimingSummary Step, double TrainingGflopPerStep,
    double BaselineResidentMegabytes, double PeakResidentMegabytes, bool PeakWasReset, double WeightsMegabytes, double OptimizerAndEmaMegabytes, string Device,
    bool GradientCheckpointing = false)
{
    /// <summary>The peak over the baseline: weights, gradients, activations and libtorch's workspace for this model.</summary>
    public double ModelPeakMegabytes => PeakResidentMegabytes - BaselineResidentMegabytes;

    /// <summary>The measured peak plus the optimizer state and EMA a full fine-tune would add.</summary>
    public double FineTuneEstimateMegabytes => ModelPeakMegabytes + OptimizerAndEmaMegabytes;

    public static FullSizeUNetBenchmark Measure(string configPath, int batch, int tokens, int warmupSteps, int steps, long seed, Device device,
        bool gradientCheckpointing, Action<string> log)
    {
        if (batch < 1 || tokens < 1 || steps < 1 || warmupSteps < 0)
            throw new ArgumentException($"The full-size section needs a batch, tokens and steps ≥ 1 (got {batch}, {tokens}, {steps}) and a non-negative warm-up.");
        var config = UNetConfig.FromDiffusersJson(File.ReadAllText(configPath));
        GC.Collect();
        GC.WaitForPendingFinalizers();
        ProcessMemory.ReleaseFreedMemory();
        bool reset = ProcessMemory.ResetPeak();
        double baseline = ProcessMemory.ResidentMegabytes();
        using var synthetic = new SyntheticBatch(config, batch, tokens, seed, device);
        manual_seed(seed);
        using var model = new UNet2DConditionModel(config);
        model.to(device).train();
        model.GradientCheckpointing = gradientCheckpointing;
        long parameters = model.ParameterCount;
        log($"full-size UNet ({Path.GetFileName(configPath)}): {parameters:N0} parameters, latents {config.InChannels}×{config.SampleSize}×{config.SampleSize}, " +
            $"batch {batch}, {tokens} text tokens of width {config.CrossAttentionDim}; {warmupSteps} warm-up and {steps} timed forward+backward steps on {device.type}" +
            $"{(gradientCheckpointing ? ", with gradient checkpointing" : "")}.");

        double first = 0, highestSeen = baseline;
        var forward = new List<double>();
        var backward = new List<double>();
        for (int i = 0; i < warmupSteps + steps; i++)
        {
            using var scope = NewDisposeScope();
            var clock = Stopwatch.StartNew();
            Tensor loss;
            using (var forwardScope = NewDisposeScope()) // as the trainer: backward frees what our handles would hold
                loss = DenoisingObjective.MeanSquaredError(model.forward(synthetic.Sample, synthetic.Timesteps, synthetic.TextStates, synthetic.TextMask),
                    synthetic.Target).MoveToOuterDisposeScope();
            loss.ToDouble();
            double f = clock.Elapsed.TotalSeconds;
            clock.Restart();
            model.zero_grad();
            loss.backward();
            if (device.type != DeviceType.CPU) model.parameters().First().grad!.sum().ToDouble(); // waits for the device
            double b = clock.Elapsed.TotalSeconds;
            if (i == 0) first = f + b;
            if (i >= warmupSteps) { forward.Add(f); backward.Add(b); }
            double resident = ProcessMemory.ResidentMegabytes();
            highestSeen = Math.Max(highestSeen, resident);
            log($"full-size UNet: step {i + 1}/{warmupSteps + steps}{(i < warmupSteps ? " (warm-up)" : "")}: forward {f:F1} s, backward {b:F1} s, RSS {resident:F0} MB.");
        }
        // Linux updates the peak (VmHWM) lazily, so it can trail the resident memory read a moment later: the peak is at
        // least every resident figure seen.
        double peak = Math.Max(ProcessMemory.PeakResidentMegabytes(), highestSeen);
        double weights = parameters * 4.0 / (1024 * 1024);
        var stepTimes = forward.Zip(backward, (f, b) => f + b).ToList();
        return new FullSizeUNetBenchmark(configPath, parameters, config.SampleSize, config.InChannels, batch, tokens, config.CrossAttentionDim, first,
            TimingSummary.Of(forward), TimingSummary.Of(backward), TimingSummary.Of(stepTimes),
            ModelFlops.ForwardTotal(config, batch, tokens) * ModelFlops.TrainingStepMultiplier / 1e9,
            baseline, peak, reset, weights, 3 * weights, device.type.ToString().ToLowerInvariant(), gradientCheckpointing);
    }
}
