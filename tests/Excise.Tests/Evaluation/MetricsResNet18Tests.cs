using System.Diagnostics;
using Excise.Data;
using Excise.Evaluation.Features;
using Excise.Evaluation.Metrics;
using Xunit.Abstractions;
using Excise.Imaging;

namespace Excise.Tests.Evaluation;

/// <summary>Real Fashion-MNIST test images padded to 32×32 (the generated size) and noise images, through ResNet18 once.</summary>
public sealed class ResNet18Fixture : IDisposable
{
    public const int PerClass = 20;
    public static readonly int[] Classes = [1, 5, 8]; // trouser, sandal, bag: visibly different shapes
    public ResNet18Features Extractor { get; } = new(new ResNet18Options(IntraOpThreads: 2));
    public IReadOnlyList<FashionMnistItem> Real { get; }
    public float[][] RealFeatures { get; }
    public float[][] NoiseFeatures { get; }
    public double MillisecondsPerImage { get; }

    public ResNet18Fixture()
    {
        Real = FashionMnist.Load(DatasetSplit.Test, perClassLimit: PerClass).Where(item => Classes.Contains(item.Label)).ToArray();
        var random = new Random(5);
        var noise = Enumerable.Range(0, 20).Select(_ =>
        {
            var pixels = new byte[32 * 32];
            random.NextBytes(pixels);
            return new RasterImage(32, 32, 1, pixels);
        }).ToArray();
        var clock = Stopwatch.StartNew();
        RealFeatures = Extractor.Extract(Real.Select(item => item.Image.PadTo(32)).ToArray());
        NoiseFeatures = Extractor.Extract(noise);
        MillisecondsPerImage = clock.Elapsed.TotalMilliseconds / (Real.Count + noise.Length);
    }

    public void Dispose() => Extractor.Dispose();
}

public class MetricsResNet18Tests(ResNet18Fixture fixture, ITestOutputHelper output) : IClassFixture<ResNet18Fixture>
{
    [Fact]
    public void Features_are_512_finite_deterministic_and_not_constant()
    {
        output.WriteLine($"{fixture.MillisecondsPerImage:F1} ms/image ({fixture.Extractor.Id}, {fixture.Extractor.Files.NetworkPath})");
        Assert.Equal(512, fixture.Extractor.Dimension);
        Assert.All(fixture.RealFeatures, row => Assert.Equal(512, row.Length));
        Assert.All(fixture.RealFeatures.Concat(fixture.NoiseFeatures), row => Assert.All(row, v => Assert.True(float.IsFinite(v))));
        var again = fixture.Extractor.Extract([fixture.Real[0].Image.PadTo(32)]);
        Assert.Equal(fixture.RealFeatures[0], again[0]);
        Assert.NotEqual(fixture.RealFeatures[0], fixture.RealFeatures[^1]);
        Assert.True(fixture.RealFeatures[0].Max() > 0); // post-ReLU average pool: non-negative, some active
        Assert.All(fixture.RealFeatures[0], v => Assert.True(v >= 0));
    }

    [Fact]
    public void Real_images_of_one_class_are_closer_to_each_other_than_to_another_class()
    {
        double Distance(float[] a, float[] b) => Math.Sqrt(a.Zip(b, (x, y) => (double)(x - y) * (x - y)).Sum());
        var labels = fixture.Real.Select(item => item.Label).ToArray();
        var ratios = new List<double>();
        foreach (var label in ResNet18Fixture.Classes)
        {
            var within = new List<double>();
            var across = new List<double>();
            for (int i = 0; i < labels.Length; i++)
                for (int j = i + 1; j < labels.Length; j++)
                    if (labels[i] == label || labels[j] == label)
                        (labels[i] == labels[j] ? within : across).Add(Distance(fixture.RealFeatures[i], fixture.RealFeatures[j]));
            output.WriteLine($"class {label}: within {within.Average():F2}, across {across.Average():F2}");
            Assert.True(within.Average() < across.Average(), $"class {label}: within {within.Average()} vs across {across.Average()}");
            ratios.Add(within.Average() / across.Average());
        }
        Assert.True(ratios.Average() < 0.85, $"within/across ratios {string.Join(", ", ratios)}");
    }

    [Fact]
    public void Fid_between_two_real_halves_is_far_below_fid_between_real_and_noise()
    {
        // Interleave so both halves hold every class.
        var first = fixture.RealFeatures.Where((_, i) => i % 2 == 0).ToArray();
        var second = fixture.RealFeatures.Where((_, i) => i % 2 == 1).ToArray();
        double realVsReal = FrechetDistance.Compute(first, second);
        double realVsNoise = FrechetDistance.Compute(first, fixture.NoiseFeatures);
        output.WriteLine($"FID real/real {realVsReal:F1}, real/noise {realVsNoise:F1} ({first.Length} vs {second.Length} images; biased at this size)");
        Assert.True(realVsReal > 0);
        Assert.True(realVsNoise > 4 * realVsReal, $"real/real {realVsReal}, real/noise {realVsNoise}");

        // KID has no small-sample bias, so the contrast is sharper: real halves ≈ 0, noise far from it.
        var options = new KidOptions(SubsetCount: 50, SubsetSize: 15, Seed: 0);
        var kidReal = KernelInceptionDistance.Compute(first, second, options);
        var kidNoise = KernelInceptionDistance.Compute(first, fixture.NoiseFeatures, options);
        output.WriteLine($"KID real/real {kidReal.Mean:F3} ± {kidReal.Std:F3}, real/noise {kidNoise.Mean:F3} ± {kidNoise.Std:F3}");
        Assert.True(kidNoise.Mean > 10 * Math.Abs(kidReal.Mean) && kidNoise.Mean > 10 * kidReal.Std);
    }

    [Fact]
    public void A_missing_model_directory_is_a_clear_error_naming_the_package()
    {
        using var empty = new TempDir();
        var error = Assert.Throws<FileNotFoundException>(() => new ResNet18Features(new ResNet18Options(ModelDirectory: empty.Path)));
        Assert.Contains(empty.Path, error.Message);
        Assert.Contains(ResNet18ModelFiles.PackageId, error.Message);
    }
}
