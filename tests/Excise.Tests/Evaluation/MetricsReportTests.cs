using Excise.Data;
using Excise.Evaluation;
using Excise.Evaluation.Metrics;
using Excise.Imaging;

namespace Excise.Tests.Evaluation;

public class MetricsReportTests
{
    /// <summary>Stand-in judges: the real ones are built elsewhere; these read a pixel so the outcome is known.</summary>
    sealed class BrightnessClassifier : IImageClassifier
    {
        public string Id => "brightness-bucket";
        public IReadOnlyList<string> ClassNames => FashionMnistClasses.Names;
        public int[] Predict(IReadOnlyList<RasterImage> images) => images.Select(image => image.Pixels[0] / 26).ToArray();
    }

    sealed class CornerDetector : IConceptDetector
    {
        public string Id => "corner";
        public double Threshold => 0.5;
        public double[] Scores(IReadOnlyList<RasterImage> images) => images.Select(image => image.Pixels[^1] / 255.0).ToArray();
    }

    static RasterImage Image(byte first, byte last)
    {
        var image = RasterImage.Blank(4, 4, 1);
        image.Pixels[0] = first;
        image.Pixels[^1] = last;
        return image;
    }

    [Fact]
    public void Semantic_fidelity_counts_matches_per_prompted_class()
    {
        // Prompted 0,0,0,3,3: predictions 0 (26·0), 1 (wrong), 0, 3, 3.
        var images = new[] { Image(0, 0), Image(30, 0), Image(10, 0), Image(80, 0), Image(100, 0) };
        var result = SemanticFidelity.Measure(new BrightnessClassifier(), images, [0, 0, 0, 3, 3]);
        Assert.Equal((4, 5), (result.Overall.Successes, result.Overall.Trials));
        Assert.Equal([0, 3], result.PerClass.Select(c => c.ClassIndex));
        Assert.Equal((2, 3), (result.PerClass[0].Estimate.Successes, result.PerClass[0].Estimate.Trials));
        Assert.Equal((2, 2), (result.PerClass[1].Estimate.Successes, result.PerClass[1].Estimate.Trials));
        Assert.Equal(FashionMnistClasses.NameOf(3), result.PerClass[1].ClassName);
        Assert.Throws<ArgumentException>(() => SemanticFidelity.Measure(new BrightnessClassifier(), images, [0, 0]));
        Assert.Throws<ArgumentOutOfRangeException>(() => SemanticFidelity.Measure(new BrightnessClassifier(), images, [0, 0, 0, 3, 10]));
    }

    [Fact]
    public void Extraction_rate_fires_at_the_threshold_and_never_on_nan()
    {
        var result = ConceptExtraction.Measure(new CornerDetector(), [Image(0, 255), Image(0, 128), Image(0, 127), Image(0, 0)]);
        Assert.Equal((2, 4), (result.Rate.Successes, result.Rate.Trials)); // 128/255 ≥ 0.5, 127/255 < 0.5
        Assert.Equal(("corner", 0.5), (result.DetectorId, result.Threshold));
        Assert.Equal(1, ConceptExtraction.FromScores("d", 0.5, [double.NaN, 0.7]).Rate.Successes);
    }

    [Fact]
    public void Report_round_trips_through_json_and_renders_a_markdown_row_with_counts()
    {
        var random = new Random(1);
        float[][] Rows(int n, double shift) => Enumerable.Range(0, n).Select(_ => Enumerable.Range(0, 4).Select(_ => (float)(random.NextDouble() + shift)).ToArray()).ToArray();
        var report = new MetricsReport("erased-seed0", 40)
        {
            Distribution = DistributionMetrics.FromFeatures("toy", Rows(40, 0), Rows(40, 0.2), new KidOptions(4, 20)),
            Extraction = ConceptExtraction.FromScores("corner", 0.5, [0.9, 0.1, 0.2, 0.3]),
            Fidelity = SemanticFidelity.FromPredictions("toy", FashionMnistClasses.Names, [1, 2], [1, 1]),
            PixelMemorisation = Memorisation.Analyse("pixels", Rows(5, 0), Rows(50, 0), new MemorisationOptions(0.01) with { TopCount = 2 }),
            Settings = new Dictionary<string, string> { ["seed"] = "0" },
        };

        var json = report.ToJson();
        Assert.Contains("\"generated_count\": 40", json);
        Assert.Contains("\"fid_is_rank_deficient\": false", json);
        var back = MetricsReport.FromJson(json);
        Assert.Equal(report.Distribution, back.Distribution);
        Assert.Equal(report.Extraction, back.Extraction);
        Assert.Equal(report.Fidelity!.Overall, back.Fidelity!.Overall);
        Assert.Equal(report.Fidelity.PerClass, back.Fidelity.PerClass);
        Assert.Equal(report.PixelMemorisation!.MostMemorised, back.PixelMemorisation!.MostMemorised);
        Assert.Equal(report.PixelMemorisation.NearestDistance, back.PixelMemorisation.NearestDistance);
        Assert.Equal("0", back.Settings["seed"]);
        Assert.Null(back.FeatureMemorisation);

        var table = MetricsReport.MarkdownTable([report, new MetricsReport("empty", 0)]).Split('\n');
        Assert.Equal(4, table.Length);
        Assert.All(table, line => Assert.Equal(MetricsReport.Columns.Count + 1, line.Count(c => c == '|')));
        Assert.Contains("0.250 [0.046, 0.699] (1/4)", table[2]);
        Assert.Contains("(40/40)", table[2]);
        Assert.Contains("| empty | 0 | – |", table[3]);
    }

    [Fact]
    public void A_rate_over_no_trials_survives_json()
    {
        var report = new MetricsReport("none", 0) { Extraction = ConceptExtraction.FromScores("d", 0.5, []) };
        var back = MetricsReport.FromJson(report.ToJson());
        Assert.True(double.IsNaN(back.Extraction!.Rate.Rate));
        Assert.Throws<InvalidDataException>(() => MetricsReport.FromJson("{\"name\": 3}", "bad.json"));
    }
}
