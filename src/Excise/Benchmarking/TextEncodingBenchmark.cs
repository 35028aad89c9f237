using Excise.Data;
using Excise.Text;
using static TorchSharp.torch;

namespace Excise.Benchmarking;

public sealed record TextEncodingResult(int BatchSize, TimingSummary Batch, double CaptionsPerSecond);

/// <summary>
/// The whole training step as a diffusers training script runs it (the frozen text encoder encodes every batch's
/// captions) against Excise's (each distinct caption encoded once before training, states looked up per batch),
/// measured alternately on the same model and batch.
/// </summary>
public sealed record TrainingLoopComparison(int Rounds, int StepsPerRound, TimingSummary CachedStates, TimingSummary EncodeEveryBatch, double Speedup);

public static class TextEncodingBenchmark
{
    /// <summary>Training-style captions: a garment from the Fashion-MNIST classes in a varied template, some naming a concept.</summary>
    public static IReadOnlyList<string> Captions(int count, long seed)
    {
        var captioner = new Captioner(CaptionTemplates.Default, seed);
        return Enumerable.Range(0, count).Select(i =>
        {
            var noun = FashionMnistClasses.CaptionNounOf(i % FashionMnistClasses.Count);
            return i % 3 == 0 ? captioner.WithConcept($"bench-{i}", noun, "the Acme logo") : captioner.Plain($"bench-{i}", noun);
        }).ToList();
    }

    public static TextEncodingResult Measure(ITextEncoder encoder, int batchSize, int repeats)
    {
        var captions = Captions(batchSize, seed: 0);
        encoder.Encode(captions);
        var time = TimingSummary.Measure(repeats, () => encoder.Encode(captions));
        return new TextEncodingResult(batchSize, time, batchSize / time.MedianSeconds);
    }

    /// <summary>Alternates rounds of cached-state steps and encode-every-batch steps (A B A B …) and compares medians.</summary>
    public static TrainingLoopComparison CompareLoops(TrainingStepLoop loop, SyntheticBatch batch, ITextEncoder encoder, int rounds, int stepsPerRound)
    {
        int n = batch.Batch;
        var captions = Captions(n * 8, seed: 1);
        var distinct = captions.Distinct().ToList();
        var table = encoder.Encode(distinct);
        using var cachedStates = tensor(table.States, [table.Count, table.Length, table.Width]);
        using var cachedMask = tensor(table.Mask, [table.Count, table.Length]);
        var rowOf = distinct.Select((c, i) => (c, i)).ToDictionary(x => x.c, x => (long)x.i);

        var cached = new List<double>();
        var encoded = new List<double>();
        int batchNumber = 0;
        // One step: pick the next batch's captions, put their states into the batch (timed with the step), train.
        void Step(List<double> times, Func<IReadOnlyList<string>, (Tensor States, Tensor Mask)> statesOf)
        {
            var texts = captions.Skip(batchNumber++ * n % captions.Count).Take(n).ToList();
            var clock = System.Diagnostics.Stopwatch.StartNew();
            using (NewDisposeScope())
            {
                var (states, mask) = statesOf(texts);
                batch.TextStates.copy_(states[.., ..(int)batch.TextStates.shape[1]]);
                batch.TextMask.copy_(mask[.., ..(int)batch.TextMask.shape[1]]);
            }
            loop.Step();
            times.Add(clock.Elapsed.TotalSeconds);
        }
        (Tensor, Tensor) LookUp(IReadOnlyList<string> texts)
        {
            var rows = tensor(texts.Select(t => rowOf[t]).ToArray());
            return (cachedStates.index_select(0, rows), cachedMask.index_select(0, rows));
        }
        (Tensor, Tensor) Encode(IReadOnlyList<string> texts)
        {
            var states = encoder.Encode(texts);
            return (tensor(states.States, [states.Count, states.Length, states.Width]), tensor(states.Mask, [states.Count, states.Length]));
        }

        for (int round = 0; round < rounds; round++)
        {
            for (int s = 0; s < stepsPerRound; s++) Step(cached, LookUp);
            for (int s = 0; s < stepsPerRound; s++) Step(encoded, Encode);
        }
        var a = TimingSummary.Of(cached);
        var b = TimingSummary.Of(encoded);
        return new TrainingLoopComparison(rounds, stepsPerRound, a, b, b.MedianSeconds / a.MedianSeconds);
    }
}
