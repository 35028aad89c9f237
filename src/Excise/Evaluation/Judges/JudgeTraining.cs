using Excise.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Evaluation.Judges;

/// <summary>Where a judge's training is: <paramref name="Step"/> of <paramref name="TotalSteps"/>, with the recent mean loss.</summary>
public sealed record JudgeTrainingProgress(string Judge, string Phase, long Step, long TotalSteps, double Loss);

/// <summary>Shared optimisation settings of both judges.</summary>
public sealed record JudgeOptimization(int Epochs, int BatchSize, double LearningRate, long Seed)
{
    /// <summary>The optimizer steps training on <paramref name="images"/> examples takes (a partial last batch is a step).</summary>
    public long StepsFor(int images) => (long)((images + BatchSize - 1) / BatchSize) * Epochs;

    public void Validate(string owner)
    {
        if (Epochs < 1) throw new ArgumentException($"{owner}: epochs must be >= 1, got {Epochs}.");
        if (BatchSize is < 1 or > 4096) throw new ArgumentException($"{owner}: batch size must be in 1..4096, got {BatchSize}.");
        if (!(LearningRate > 0 && LearningRate < 1)) throw new ArgumentException($"{owner}: learning rate must be in (0, 1), got {LearningRate}.");
    }
}

/// <summary>
/// Mini-batch Adam with a cosine learning-rate decay to zero, which gets a small CNN to its plateau in a couple of
/// epochs. The batch builder receives the example indices and the epoch, so augmentations can differ per epoch
/// while staying reproducible.
/// </summary>
internal static class JudgeTraining
{
    /// <summary>Seed stream (SeedMixer) of each epoch's example order; the cached judges were trained with it.</summary>
    const long ShuffleStream = 101;

    public delegate (Tensor Input, Tensor Target) BatchBuilder(int[] indices, int epoch);

    public static double Train(JudgeNetwork network, int exampleCount, JudgeOptimization optimization, BatchBuilder buildBatch,
        Func<Tensor, Tensor, Tensor> lossOf, string judge, IProgress<JudgeTrainingProgress>? progress)
    {
        if (exampleCount < 1) throw new ArgumentException($"{judge}: no training examples.");
        int stepsPerEpoch = (exampleCount + optimization.BatchSize - 1) / optimization.BatchSize;
        long totalSteps = (long)stepsPerEpoch * optimization.Epochs, step = 0;
        using var optimizer = optim.Adam(network.parameters(), lr: optimization.LearningRate);
        network.train();
        double recentLoss = double.NaN, lossSum = 0;
        int lossCount = 0;
        for (int epoch = 0; epoch < optimization.Epochs; epoch++)
        {
            var order = Enumerable.Range(0, exampleCount).ToArray();
            new Random(SeedMixer.DeriveInt(optimization.Seed, ShuffleStream, epoch)).Shuffle(order);
            for (int start = 0; start < exampleCount; start += optimization.BatchSize, step++)
            {
                using var scope = NewDisposeScope();
                double rate = 0.5 * optimization.LearningRate * (1 + Math.Cos(Math.PI * step / totalSteps));
                foreach (var group in optimizer.ParamGroups) group.LearningRate = rate;
                var (input, target) = buildBatch(order[start..Math.Min(exampleCount, start + optimization.BatchSize)], epoch);
                optimizer.zero_grad();
                var loss = lossOf(network.forward(input), target);
                loss.backward();
                optimizer.step();
                double value = loss.ToSingle();
                if (!double.IsFinite(value))
                    throw new InvalidOperationException($"{judge}: training loss became {value} at step {step}; lower the learning rate.");
                lossSum += value;
                lossCount++;
                if (step % 25 == 24 || step == totalSteps - 1)
                {
                    recentLoss = lossSum / lossCount;
                    lossSum = 0;
                    lossCount = 0;
                    progress?.Report(new JudgeTrainingProgress(judge, $"epoch {epoch + 1}/{optimization.Epochs}", step + 1, totalSteps, recentLoss));
                }
                if (step % 10 == 9) GC.Collect();
            }
        }
        network.eval();
        return recentLoss;
    }
}
