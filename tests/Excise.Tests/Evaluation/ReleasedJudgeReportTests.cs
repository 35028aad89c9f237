using System.Text.Json;
using Excise.Configuration;
using Excise.Evaluation.Judges;

namespace Excise.Tests.Evaluation;

/// <summary>
/// Users keep trained judges in their caches (runs/judges), and a judge's report is read back strictly from its
/// metadata: a report field removed or renamed would turn every cached judge into an error. These are the reports of
/// the judges the published runs used, as those runs wrote them.
/// </summary>
public sealed class ReleasedJudgeReportTests
{
    static string Released(string name) => File.ReadAllText(Path.Combine(RepositoryPaths.Root, "tests", "Excise.Tests", "Evaluation", "released-judge-reports", name));

    [Theory]
    [InlineData("concept-detector-logo-2026-12-06.json", 0.999)]
    [InlineData("concept-detector-stripes-2026-12-06.json", 0.99)]
    public void A_cached_detector_from_a_published_run_still_reads(string file, double minimumPrecision)
    {
        var report = JsonSerializer.Deserialize<ConceptDetectorReport>(Released(file), ConfigLoader.JsonOptions)!;
        Assert.True(report.HeldOut[0].Metrics.Precision >= minimumPrecision);
        Assert.NotEmpty(report.OffDistribution);
    }

    [Fact]
    public void A_cached_classifier_from_a_published_run_still_reads()
    {
        var report = JsonSerializer.Deserialize<GarmentClassifierReport>(Released("garment-classifier-2026-12-06.json"), ConfigLoader.JsonOptions)!;
        Assert.Equal(0.9054, report.TestAccuracy);
    }
}
