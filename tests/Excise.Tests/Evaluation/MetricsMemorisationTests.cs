using Excise.Data;
using Excise.Evaluation.Features;
using Excise.Evaluation.Metrics;
using Excise.Imaging;

namespace Excise.Tests.Evaluation;

public class MetricsMemorisationTests
{
    const int TrainingCount = 3000;
    static readonly int[] CopiedIndices = [7, 123, 999, 2048, 2999];

    static RasterImage[] Noise(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ =>
        {
            var pixels = new byte[32 * 32];
            random.NextBytes(pixels);
            return new RasterImage(32, 32, 1, pixels);
        }).ToArray();
    }

    /// <summary>Noise images with the 5 copies of training images spread among them, at known positions.</summary>
    static (RasterImage[] Training, RasterImage[] Generated, int[] CopyPositions) Scenario()
    {
        var training = FashionMnist.Load(DatasetSplit.Train, limit: TrainingCount).Select(item => item.Image.PadTo(32)).ToArray();
        var generated = Noise(20, seed: 1).ToList();
        var positions = new[] { 0, 4, 9, 13, 22 };
        for (int i = 0; i < CopiedIndices.Length; i++) generated.Insert(positions[i], training[CopiedIndices[i]].Copy());
        return (training, generated.ToArray(), positions);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Exact_copies_of_training_images_are_flagged_and_noise_is_not(bool normalise)
    {
        var (training, generated, positions) = Scenario();
        // The copied training images must be unique in the subset, or "second nearest" would also be 0 (still ratio 0).
        foreach (var index in CopiedIndices)
            Assert.Single(training, image => image.SameContentAs(training[index]));

        var pixels = new PixelFeatures(32, 32);
        var options = (normalise ? new MemorisationOptions(CopyDistance: 0.05, NormaliseFeatures: true) : MemorisationOptions.ForPixels(pixels.Dimension))
            with { TopCount = 8, ChunkSize = 7 };
        var result = Memorisation.Measure(pixels, generated, training, options);

        Assert.Equal((25, TrainingCount), (result.GeneratedCount, result.TrainingCount));
        Assert.Equal((5, 25), (result.Copies.Successes, result.Copies.Trials));
        Assert.Equal((5, 25), (result.NearCopies.Successes, result.NearCopies.Trials));
        var copies = result.MostMemorised.Take(5).OrderBy(m => m.GeneratedIndex).ToArray();
        Assert.Equal(positions, copies.Select(m => m.GeneratedIndex));
        Assert.Equal(CopiedIndices, copies.Select(m => m.NearestIndex));
        Assert.All(copies, m => Assert.Equal((0.0, 0.0), (m.NearestDistance, m.Ratio)));
        Assert.All(copies, m => Assert.True(m.SecondDistance > 0));
        var noise = result.MostMemorised.Skip(5).ToArray();
        Assert.Equal(3, noise.Length);
        Assert.All(noise, m => Assert.True(m.Ratio > 0.9 && m.NearestDistance > options.CopyDistance, $"noise {m}"));
        Assert.Equal(0, result.NearestDistance.Min);
        Assert.True(result.NearestDistance.Max > result.NearestDistance.Median && result.NearestDistance.Median > 0);
        Assert.EndsWith(normalise ? "L2-normalised" : "1", result.Space);
    }

    [Fact]
    public void Chunked_search_finds_the_same_two_neighbours_as_brute_force()
    {
        var random = new Random(3);
        float[][] Rows(int count) => Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, 16).Select(_ => (float)random.NextDouble()).ToArray()).ToArray();
        var training = Rows(500);
        var generated = Rows(40);
        var matches = NearestNeighbours.Search(generated, training, chunkSize: 6);
        for (int g = 0; g < generated.Length; g++)
        {
            var ranked = training.Select((row, i) => (i, d: Math.Sqrt(row.Zip(generated[g], (a, b) => ((double)a - b) * ((double)a - b)).Sum())))
                .OrderBy(x => x.d).Take(2).ToArray();
            Assert.Equal((g, ranked[0].i, ranked[1].i), (matches[g].GeneratedIndex, matches[g].NearestIndex, matches[g].SecondIndex));
            Assert.Equal(ranked[0].d, matches[g].NearestDistance, 9);
            Assert.Equal(ranked[0].d / ranked[1].d, matches[g].Ratio, 9);
        }
    }

    [Fact]
    public void Distance_summary_uses_linear_quartiles_and_bad_inputs_are_named()
    {
        var summary = DistanceSummary.Of([4, 1, 3, 2, 5]);
        Assert.Equal((1.0, 2.0, 3.0, 4.0, 5.0, 3.0), (summary.Min, summary.Q1, summary.Median, summary.Q3, summary.Max, summary.Mean));
        var error = Assert.Throws<ArgumentException>(() => NearestNeighbours.Search([[1f, 2f]], [[1f, 2f, 3f], [0f, 0f, 0f]]));
        Assert.Contains("dimension", error.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new MemorisationOptions(CopyDistance: 0).Validate());
        Assert.Throws<ArgumentException>(() => new PixelFeatures(32, 32).Extract([RasterImage.Blank(28, 28, 1)]));
    }
}
