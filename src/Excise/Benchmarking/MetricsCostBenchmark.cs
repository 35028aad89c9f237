using System.Diagnostics;
using Excise.Data;
using Excise.Evaluation.Features;
using Excise.Evaluation.Metrics;
using Excise.Imaging;

namespace Excise.Benchmarking;

/// <summary>What each evaluation metric costs for <see cref="Generated"/> generated images (docs/metrics.md), in seconds.</summary>
public sealed record MetricsCostResult(
    int Generated, int TrainingImages,
    double Resnet18Seconds, double GaussianFitsSeconds, double FrechetSeconds, double KidSeconds,
    double TrainingLoadSeconds, double PixelMemorisationSeconds, double FeatureMemorisationSeconds);

/// <summary>
/// Times the metrics on real test images standing in for generated ones: ResNet18 features, the two Gaussian fits and
/// the Fréchet distance from them, KID, and the memorisation searches against all 60,000 training images (pixels, and
/// random 512-d rows standing in for their features, which only the search's size decides the cost of).
/// </summary>
public static class MetricsCostBenchmark
{
    public static MetricsCostResult Measure(int generated, long seed, Action<string> log)
    {
        var images = FashionMnist.Load(DatasetSplit.Test, limit: generated).Select(item => item.Image.PadTo(32)).ToArray();

        using var resnet = new ResNet18Features();
        float[][] features = [];
        double extract = Seconds(() => features = resnet.Extract(images));
        log($"metrics: ResNet18 features {extract:F1} s per {images.Length} images ({1000 * extract / images.Length:F1} ms/image).");

        var other = RandomRows(images.Length, features[0].Length, seed + 1);
        GaussianFit fitA = null!, fitB = null!;
        double fits = Seconds(() => { fitA = GaussianFit.Of(features); fitB = GaussianFit.Of(other); });
        double frechet = Seconds(() => FrechetDistance.Compute(fitA, fitB));
        double kid = Seconds(() => KernelInceptionDistance.Compute(features, other, new KidOptions()));
        log($"metrics: Gaussian fits of {images.Length} + {images.Length} {features[0].Length}-d rows {fits:F2} s, Fréchet distance {frechet:F2} s, KID {kid:F2} s.");

        RasterImage[] training = [];
        var pixels = new PixelFeatures(32, 32);
        float[][] trainingPixels = [], generatedPixels = [];
        double load = Seconds(() =>
        {
            training = FashionMnist.Load(DatasetSplit.Train).Select(item => item.Image.PadTo(32)).ToArray();
            trainingPixels = pixels.Extract(training);
            generatedPixels = pixels.Extract(images);
        });
        double pixelSearch = Seconds(() => Memorisation.Analyse(pixels.Id, generatedPixels, trainingPixels, MemorisationOptions.ForPixels(pixels.Dimension)));
        var trainingFeatures = RandomRows(training.Length, features[0].Length, seed + 2);
        double featureSearch = Seconds(() => Memorisation.Analyse("resnet18", features, trainingFeatures, MemorisationOptions.ForFeatures()));
        log($"metrics: loading {training.Length} training images and their pixel rows {load:F1} s; memorisation {images.Length} vs {training.Length}: " +
            $"pixels {pixelSearch:F1} s, normalised features {featureSearch:F1} s.");
        return new MetricsCostResult(images.Length, training.Length, extract, fits, frechet, kid, load, pixelSearch, featureSearch);
    }

    static double Seconds(Action action)
    {
        var clock = Stopwatch.StartNew();
        action();
        return clock.Elapsed.TotalSeconds;
    }

    static float[][] RandomRows(int count, int dimension, long seed)
    {
        var random = new Random(unchecked((int)seed));
        return Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, dimension).Select(_ => (float)random.NextDouble()).ToArray()).ToArray();
    }
}
