using System.Diagnostics;
using Excise.Data;
using Excise.Evaluation.Features;
using Excise.Evaluation.Metrics;
using Xunit.Abstractions;

namespace Excise.Tests.Evaluation;

/// <summary>Runs only when EXCISE_METRICS_BENCH=1: timings for docs/metrics.md, too slow for the normal suite.</summary>
public sealed class MetricsBenchmarkFactAttribute : FactAttribute
{
    public MetricsBenchmarkFactAttribute()
    {
        if (Environment.GetEnvironmentVariable("EXCISE_METRICS_BENCH") != "1") Skip = "set EXCISE_METRICS_BENCH=1 to time the metrics";
    }
}

public class MetricsBenchmarkTests(ITestOutputHelper output)
{
    const int Generated = 1000;

    static double Seconds(Action action)
    {
        var clock = Stopwatch.StartNew();
        action();
        return clock.Elapsed.TotalSeconds;
    }

    static float[][] RandomRows(int count, int dimension, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, dimension).Select(_ => (float)random.NextDouble()).ToArray()).ToArray();
    }

    [MetricsBenchmarkFact]
    public void Time_each_metric_per_1000_generated_images()
    {
        output.WriteLine($"{Environment.ProcessorCount} cores, load average {File.ReadAllText("/proc/loadavg").Trim()}");
        var images = FashionMnist.Load(DatasetSplit.Test, limit: Generated).Select(item => item.Image.PadTo(32)).ToArray();

        using var resnet = new ResNet18Features();
        float[][] features = [];
        double extract = Seconds(() => features = resnet.Extract(images));
        output.WriteLine($"ResNet18 features: {extract:F1} s per {Generated} images ({1000 * extract / Generated:F1} ms/image)");

        var other = RandomRows(Generated, 512, seed: 1);
        GaussianFit fitA = null!, fitB = null!;
        double fit = Seconds(() => { fitA = GaussianFit.Of(features); fitB = GaussianFit.Of(other); });
        double fid = Seconds(() => FrechetDistance.Compute(fitA, fitB));
        output.WriteLine($"Fréchet distance, 1000 vs 1000, 512-d: fitting both Gaussians {fit:F2} s, distance {fid:F2} s");
        double kid = Seconds(() => KernelInceptionDistance.Compute(features, other, new KidOptions()));
        output.WriteLine($"KID, 1000 vs 1000, 512-d, 100 subsets x 1000: {kid:F2} s");

        RasterImage[] training = [];
        double load = Seconds(() => training = FashionMnist.Load(DatasetSplit.Train).Select(item => item.Image.PadTo(32)).ToArray());
        var pixels = new PixelFeatures(32, 32);
        float[][] trainingPixels = [], generatedPixels = [];
        double pixelFeatures = Seconds(() => { trainingPixels = pixels.Extract(training); generatedPixels = pixels.Extract(images); });
        output.WriteLine($"Loading 60000 training images {load:F1} s, pixel rows {pixelFeatures:F1} s");
        double pixelSearch = Seconds(() => Memorisation.Analyse(pixels.Id, generatedPixels, trainingPixels, MemorisationOptions.ForPixels(pixels.Dimension)));
        output.WriteLine($"Memorisation, pixels 1024-d, 1000 vs 60000: {pixelSearch:F1} s");
        var trainingFeatures = RandomRows(60_000, 512, seed: 2);
        double featureSearch = Seconds(() => Memorisation.Analyse("resnet18", features, trainingFeatures, MemorisationOptions.ForFeatures()));
        output.WriteLine($"Memorisation, features 512-d normalised, 1000 vs 60000 (features given): {featureSearch:F1} s");
    }
}
