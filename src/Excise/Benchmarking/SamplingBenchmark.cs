using Excise.Diffusion;
using Excise.Models;
using static TorchSharp.torch;

namespace Excise.Benchmarking;

/// <summary>DDIM sampling speed with guidance, whether batching the guided pair pays, and whether memory stays flat.</summary>
public sealed record SamplingBenchmarkResult(
    int Images, int Steps, double GuidanceScale, TimingSummary Call, double ImagesPerSecond,
    TimingSummary BatchedGuidanceForward, TimingSummary SeparateGuidanceForwards, double SeparateOverBatched,
    double ResidentAfterFirstCallMegabytes, double ResidentAfterLastCallMegabytes);

public static class SamplingBenchmark
{
    public static SamplingBenchmarkResult Measure(UNet2DConditionModel model, NoiseSchedule schedule, SyntheticBatch batch, int steps, int calls, double guidanceScale = 3.0)
    {
        model.eval();
        var sampler = new DiffusionSampler(schedule);
        var predict = Diffusion.NoisePredictors.Of(model);
        int n = batch.Batch;
        var shape = batch.Sample.shape;
        using var unconditional = zeros(1, batch.TextStates.shape[1], batch.TextStates.shape[2]);
        using var unconditionalMask = zeros(1, batch.TextMask.shape[1]);
        unconditionalMask[0, 0] = tensor(1f);

        var rss = new List<double>();
        var times = new List<double>();
        for (int call = 0; call < calls; call++)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            using (var images = sampler.Sample(predict, shape, batch.TextStates, batch.TextMask, unconditional, unconditionalMask,
                       new SamplingOptions(steps, guidanceScale, Seed: call))) { }
            times.Add(clock.Elapsed.TotalSeconds);
            GC.Collect();
            rss.Add(ProcessMemory.ResidentMegabytes());
        }
        var perCall = TimingSummary.Of(times);

        // The guided pair as one forward of 2n rows, against two forwards of n rows (what a sampler without batching does).
        using var uncondStates = unconditional.expand(n, -1, -1).contiguous();
        using var uncondMask = unconditionalMask.expand(n, -1).contiguous();
        using var pairSample = cat([batch.Sample, batch.Sample], 0);
        using var pairTime = cat([batch.Timesteps, batch.Timesteps], 0);
        using var pairStates = cat([uncondStates, batch.TextStates], 0);
        using var pairMask = cat([uncondMask, batch.TextMask], 0);
        int repeats = Math.Max(3, calls);
        TimingSummary batched, separate;
        using (no_grad())
        {
            Forward(predict, pairSample, pairTime, pairStates, pairMask);
            batched = TimingSummary.Measure(repeats, () => Forward(predict, pairSample, pairTime, pairStates, pairMask));
            separate = TimingSummary.Measure(repeats, () =>
            {
                Forward(predict, batch.Sample, batch.Timesteps, uncondStates, uncondMask);
                Forward(predict, batch.Sample, batch.Timesteps, batch.TextStates, batch.TextMask);
            });
        }
        return new SamplingBenchmarkResult(n, steps, guidanceScale, perCall, n / perCall.MedianSeconds, batched, separate,
            separate.MedianSeconds / batched.MedianSeconds, rss[0], rss[^1]);
    }

    static void Forward(NoisePredictor predict, Tensor x, Tensor t, Tensor states, Tensor mask)
    {
        using var _ = NewDisposeScope();
        predict(x, t, states, mask);
    }
}
