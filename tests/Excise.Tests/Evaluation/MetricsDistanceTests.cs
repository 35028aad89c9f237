using Excise.Evaluation.Metrics;

namespace Excise.Tests.Evaluation;

public class MetricsDistanceTests
{
    static float[][] Gaussian(int count, double[] mean, double[] std, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => mean.Select((m, j) => (float)(m + std[j] * Normal(random))).ToArray()).ToArray();
    }

    static double Normal(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());

    static float[][] AddNoise(float[][] rows, double std, int seed)
    {
        var random = new Random(seed);
        return rows.Select(row => row.Select(v => (float)(v + std * Normal(random))).ToArray()).ToArray();
    }

    [Fact]
    public void Frechet_distance_of_a_set_to_itself_is_zero_and_grows_with_added_noise()
    {
        // 64-d features with correlated structure, fewer samples than 512 but more than the dimension.
        var basis = Gaussian(64, new double[64], Enumerable.Repeat(1.0, 64).ToArray(), seed: 1);
        var latent = Gaussian(300, new double[8], Enumerable.Repeat(1.0, 8).ToArray(), seed: 2);
        var features = latent.Select(z => Enumerable.Range(0, 64).Select(j => z.Select((v, k) => v * basis[k][j]).Sum()).ToArray()).ToArray();

        Assert.Equal(0, FrechetDistance.Compute(features, features), 6);
        var distances = new[] { 0.1, 0.5, 2.0 }.Select(std => FrechetDistance.Compute(features, AddNoise(features, std, seed: 3))).ToArray();
        Assert.True(distances[0] > 1e-3, $"noise 0.1 gave {distances[0]}");
        Assert.True(distances[0] < distances[1] && distances[1] < distances[2], string.Join(", ", distances));
    }

    [Fact]
    public void Frechet_distance_matches_the_closed_form_for_diagonal_gaussians()
    {
        // Diagonal covariances: d² = Σ (μ1 − μ2)² + Σ (σ1 − σ2)².
        double[] mean1 = [0, 1, -1, 2], mean2 = [0.5, 1, 0, 2];
        double[] std1 = [1, 2, 0.5, 1], std2 = [1.5, 1, 0.5, 3];
        double expected = mean1.Zip(mean2, (a, b) => (a - b) * (a - b)).Sum() + std1.Zip(std2, (a, b) => (a - b) * (a - b)).Sum();
        var distance = FrechetDistance.Compute(Gaussian(40_000, mean1, std1, seed: 4), Gaussian(40_000, mean2, std2, seed: 5));
        Assert.Equal(expected, distance, 0.06 * expected); // expected = 6.25; sampling error at 40k is about 1%
    }

    [Fact]
    public void Frechet_distance_works_with_fewer_samples_than_dimensions_and_says_so()
    {
        var a = Gaussian(100, new double[512], Enumerable.Repeat(1.0, 512).ToArray(), seed: 6);
        var b = Gaussian(100, Enumerable.Repeat(0.3, 512).ToArray(), Enumerable.Repeat(1.0, 512).ToArray(), seed: 7);
        var fitA = GaussianFit.Of(a);
        Assert.True(fitA.IsRankDeficient);
        var same = FrechetDistance.Compute(fitA, fitA);
        var shifted = FrechetDistance.Compute(fitA, GaussianFit.Of(b));
        Assert.True(double.IsFinite(shifted));
        Assert.Equal(0, same, 6);
        Assert.True(shifted > 0.3 * 0.3 * 512, $"shifted {shifted}"); // at least the mean term
        Assert.Throws<ArgumentException>(() => FrechetDistance.Compute(a, a.Select(row => row[..10]).ToArray()));
    }

    [Fact]
    public void Kid_is_unbiased_for_two_halves_of_one_set_and_clearly_positive_for_shifted_sets()
    {
        var std = Enumerable.Repeat(1.0, 32).ToArray();
        var all = Gaussian(800, new double[32], std, seed: 8);
        var options = new KidOptions(SubsetCount: 20, SubsetSize: 200, Seed: 1);
        var halves = KernelInceptionDistance.Compute(all[..400], all[400..], options);
        var shifted = KernelInceptionDistance.Compute(all[..400], Gaussian(400, Enumerable.Repeat(0.5, 32).ToArray(), std, seed: 9), options);

        Assert.Equal((20, 200, 400, 400), (halves.SubsetCount, halves.SubsetSize, halves.CountA, halves.CountB));
        Assert.True(halves.Std > 0);
        Assert.True(Math.Abs(halves.Mean) < halves.Std, $"halves: {halves.Mean} ± {halves.Std}");
        Assert.True(shifted.Mean > 10 * Math.Max(halves.Std, Math.Abs(halves.Mean)), $"shifted {shifted.Mean}, halves {halves.Mean} ± {halves.Std}");
        Assert.True(shifted.Mean > 3 * shifted.Std);
    }

    [Fact]
    public void Kid_is_reproducible_for_a_seed_and_caps_the_subset_at_the_smaller_set()
    {
        var std = Enumerable.Repeat(1.0, 8).ToArray();
        var a = Gaussian(50, new double[8], std, seed: 10);
        var b = Gaussian(80, new double[8], std, seed: 11);
        var first = KernelInceptionDistance.Compute(a, b, new KidOptions(5, 1000, Seed: 3));
        var again = KernelInceptionDistance.Compute(a, b, new KidOptions(5, 1000, Seed: 3));
        Assert.Equal(first, again);
        Assert.Equal(50, first.SubsetSize);

        // Kernels of the whole sets computed once or per subset: the same subsets, the same numbers.
        var perSubset = KernelInceptionDistance.Compute(a, b, new KidOptions(5, 1000, Seed: 3, MaxPrecomputedKernelEntries: 0));
        Assert.Equal(first.Mean, perSubset.Mean, 10);
        Assert.Equal(first.Std, perSubset.Std, 10);
    }
}
