using Excise.Models;
using Excise.Models.Lora;
using Excise.Projection;
using Excise.Training;
using static TorchSharp.torch;

namespace Excise.Benchmarking;

/// <summary>The projection's own time per step and its share of the step's median, for one mode.</summary>
public sealed record ProjectionOverhead(string Mode, bool Lora, int Weights, int Rank, TimingSummary Step, double ProjectionSecondsPerStep, double ShareOfStep);

/// <summary>
/// Projection cost inside real training steps: the concept projector hooked into the step loop, in gradient and update
/// mode, on full K/V weights and on LoRA adapters. The basis is a random orthonormal d×k matrix: the cost depends on
/// the rank, not on which concept spans it.
/// </summary>
public static class ProjectionBenchmark
{
    public static IReadOnlyList<ProjectionOverhead> Measure(UNetConfig config, SyntheticBatch batch, int rank, int steps, long seed)
    {
        var results = new List<ProjectionOverhead>();
        using var basis = RandomBasis(config.CrossAttentionDim, rank, seed);
        foreach (var lora in new[] { false, true })
            foreach (var mode in new[] { ProjectionMode.Gradient, ProjectionMode.Update })
            {
                manual_seed(seed);
                using var model = new UNet2DConditionModel(config);
                var patterns = ConceptProjector.DefaultPatterns;
                if (lora)
                {
                    Lora.Inject(model, new LoraOptions(4, 4, Seed: seed));
                    patterns = patterns.Select(p => p.Replace(@"\.weight$", @"\.lora_A\.weight$")).ToList();
                }
                using var loop = new TrainingStepLoop(model, batch);
                using var projector = new ConceptProjector(basis, ConceptProjector.SelectParameters(model, patterns, config.CrossAttentionDim), mode);
                loop.AddHook(new ProjectionHook(projector));
                loop.Step();
                var warm = projector.Elapsed;
                var times = Enumerable.Range(0, steps).Select(_ => loop.Step().Total).ToList();
                double perStep = (projector.Elapsed - warm).TotalSeconds / steps;
                var step = TimingSummary.Of(times);
                results.Add(new ProjectionOverhead(mode.ToString().ToLowerInvariant(), lora, projector.Targets.Count, rank, step, perStep, perStep / step.MedianSeconds));
            }
        return results;
    }

    static Tensor RandomBasis(int dimension, int rank, long seed)
    {
        using var _ = NewDisposeScope();
        var generator = new Generator((ulong)seed, CPU);
        var (q, _) = linalg.qr(randn([dimension, rank], generator: generator));
        return q.contiguous().MoveToOuterDisposeScope();
    }
}
