using System.Diagnostics;
using Excise.Models;
using static TorchSharp.torch;

namespace Excise.Benchmarking;

/// <summary>Median forward time of one top-level block, with its analytic FLOPs and the rate achieved.</summary>
public sealed record BlockTime(string Block, double MedianSeconds, double ShareOfForward, double ForwardGflop, double Gflops, double AttentionShare);

/// <summary>
/// Where a training-mode forward spends its time, per diffusers block, timed between the model's block observers
/// (CPU execution is synchronous, so the clock between two callbacks is the block's time). The clock starts before the
/// timestep features, so <c>time_embedding</c> includes them, and <c>conv_out</c> includes the final norm.
/// </summary>
public static class ForwardProfile
{
    public static IReadOnlyList<BlockTime> Measure(UNet2DConditionModel model, SyntheticBatch batch, int repeats)
    {
        var flops = ModelFlops.Forward(model.Config, batch.Batch, (int)batch.TextStates.shape[1]).ToDictionary(b => b.Block);
        var samples = new Dictionary<string, List<double>>();
        for (int r = 0; r < repeats; r++)
        {
            using var _ = NewDisposeScope();
            var clock = Stopwatch.StartNew();
            double last = 0;
            void Lap(string name)
            {
                if (name == "time_proj") return; // counted with time_embedding, which follows it
                double now = clock.Elapsed.TotalSeconds;
                (samples.TryGetValue(name, out var list) ? list : samples[name] = new()).Add(now - last);
                last = now;
            }
            model.Forward(batch.Sample, batch.Timesteps, batch.TextStates, batch.TextMask, (name, _) => Lap(name));
            Lap("conv_out");
        }
        var medians = samples.ToDictionary(kv => kv.Key, kv => TimingSummary.Of(kv.Value).MedianSeconds);
        double total = medians.Values.Sum();
        return medians.Select(kv =>
        {
            var f = flops.TryGetValue(kv.Key, out var b) ? b : new BlockFlops(kv.Key, 0, 0);
            return new BlockTime(kv.Key, kv.Value, total > 0 ? kv.Value / total : 0, f.ForwardFlops / 1e9,
                kv.Value > 0 ? f.ForwardFlops / kv.Value / 1e9 : 0, f.AttentionShare);
        }).ToList();
    }
}
