using Excise.Evaluation.Metrics;
using Excise.Experiment;

namespace Excise.Tests.Experiment;

public sealed class ExperimentReadingTests
{
    const int Images = 40;

    /// <summary>
    /// Two arms over seeds, logo counts per seed for the named and unasked prompts (and in-domain FD per seed, if
    /// given); summaries as the runner makes them.
    /// </summary>
    static ExperimentResults Results(int[] standardNamed, int[] projectedNamed, double[]? standardFd = null, double[]? projectedFd = null)
    {
        ArmSeedOutcome Run(string arm, int seed, int named, double? fd) => new(arm, seed, seed, $"arms/{arm}/{seed}", $"arms/{arm}/{seed}/eval", 60, 0.05, [0.1, 0.05], 0, null, null,
            new Dictionary<string, MetricsReport>
            {
                ["prompt"] = new("prompt", Images) { Extraction = new("detector", 0.5, ProportionEstimate.Wilson(named, Images)) },
                ["baseline-rate"] = new("baseline-rate", Images)
                {
                    Extraction = new("detector", 0.5, ProportionEstimate.Wilson(1, Images)),
                    Distribution = fd is null ? null : new DistributionMetrics("classifier", 1000, Images, 64, fd.Value, null),
                },
            }, new Dictionary<string, double>(), "fp");
        var runs = standardNamed.Select((n, seed) => Run("standard", seed, n, standardFd?[seed]))
            .Concat(projectedNamed.Select((n, seed) => Run("update-projection", seed, n, projectedFd?[seed]))).ToList();
        ArmSummary Summary(string arm) => new(arm,
            new[] { "prompt", "baseline-rate" }.ToDictionary(a => a,
                a => Estimate.OfProportions(runs.Where(r => r.Arm == arm).Select(r => r.Attacks[a].Extraction!.Rate).ToList())),
            null,
            standardFd is null ? null : Estimate.OfNonNegative(runs.Where(r => r.Arm == arm).Select(r => r.Attacks["baseline-rate"].Distribution!.Fid).ToList()),
            null, null, null, Estimate.OfValues([60.0]), null);
        var synthetic = Excise.Tests.Reporting.SyntheticResults.Setup(qualityMeaningful: true);
        var setup = synthetic with
        {
            Execution = synthetic.Execution with { Seeds = standardNamed.Length, Arms = ["standard", "update-projection"] },
            Concept = synthetic.Concept with { Phrase = "the Acme logo" },
        };
        return new ExperimentResults(setup, [Summary("standard"), Summary("update-projection")], runs, [], 1, DateTime.UtcNow);
    }

    static string ArmLine(ExperimentResults results) => ExperimentReading.Read(results).Single(l => l.StartsWith("update-projection:"));

    [Fact]
    public void Several_seeds_compare_arms_seed_by_seed()
    {
        // The seeds differ a lot (36, 24, 39 of 40), so the arms' own intervals overlap, but the projection is 5–7 lower in every seed.
        var results = Results([36, 24, 39], [30, 19, 32]);
        var standard = results.Summary[0].Extraction["prompt"];
        var projected = results.Summary[1].Extraction["prompt"];
        Assert.False(projected.ClearlyBelow(standard));
        var line = ArmLine(results);
        Assert.Contains("clearly below standard's", line);
        Assert.Contains("seed by seed −15 points", line);
        Assert.Contains("holds here", ExperimentReading.Read(results).Single(l => l.StartsWith("The paper's claim")));
    }

    [Fact]
    public void Differences_that_change_sign_across_seeds_are_not_clear()
    {
        var line = ArmLine(Results([36, 24, 39], [30, 28, 38]));
        Assert.Contains("named", line);
        Assert.Contains("not clearly different from standard's", line);
    }

    [Fact]
    public void Agreeing_seeds_do_not_shrink_the_paired_interval_below_what_the_images_allow()
    {
        // Every seed 1 image lower: the t interval has zero width, but 1 in 40 is noise.
        var line = ArmLine(Results([36, 36, 36], [35, 35, 35]));
        Assert.Contains("not clearly different from standard's", line);
    }

    [Fact]
    public void Fd_is_compared_seed_by_seed_and_a_clear_change_qualifies_the_paper_claim()
    {
        // The seeds move FD a lot (250–400) but the projection is 30–40 higher in every one of them.
        var worse = Results([36, 24, 39], [30, 19, 32], [300, 250, 400], [335, 280, 440]);
        Assert.Contains("in-domain FD 351.67 vs 316.67 (1.11×; seed by seed +35 [+23, +47], higher)", ArmLine(worse));
        Assert.Contains("holds for extraction but FD changed", ExperimentReading.Read(worse).Single(l => l.StartsWith("The paper's claim")));

        var same = Results([36, 24, 39], [30, 19, 32], [300, 250, 400], [310, 245, 395]);
        Assert.Contains("indistinguishable at 95%)", ArmLine(same));
        Assert.Contains("holds here", ExperimentReading.Read(same).Single(l => l.StartsWith("The paper's claim")));

        var oneSeed = ArmLine(Results([38], [10], [300], [420]));
        Assert.Contains("in-domain FD 420.00 vs 300.00 (1.40×)", oneSeed);
    }

    [Fact]
    public void One_seed_compares_by_the_interval_of_the_difference_and_says_it_is_provisional()
    {
        var line = ArmLine(Results([38], [10]));
        Assert.Contains("clearly below standard's", line);
        Assert.Contains("−70 points [", line);
        Assert.DoesNotContain("seed by seed", line);

        // 30 vs 20 of 40: the Wilson intervals overlap ([0.598, 0.858] and [0.352, 0.648]), but the difference's Newcombe
        // interval [+0.038, +0.433] excludes 0; 30 vs 24 ([−0.054, +0.338]) does not. The reading follows the difference.
        var clear = Results([30], [20]);
        Assert.False(clear.Summary[1].Extraction["prompt"].ClearlyBelow(clear.Summary[0].Extraction["prompt"]));
        Assert.Contains("clearly below standard's", ArmLine(clear));
        Assert.Contains("not clearly different from standard's", ArmLine(Results([30], [24])));

        var reading = ExperimentReading.Read(clear);
        Assert.StartsWith("One seed: every verdict below is provisional", reading[0]);
        Assert.EndsWith("(one seed: provisional).", reading.Single(l => l.StartsWith("The paper's claim")));
        Assert.DoesNotContain(ExperimentReading.Read(Results([36, 24, 39], [30, 19, 32])), l => l.Contains("provisional"));
    }

    static ExperimentResults Published(string file) =>
        ExperimentResults.FromJson(File.ReadAllText(Path.Combine(RepositoryPaths.Root, "docs", "results", file)), file);

    [Fact]
    public void The_reading_names_the_defence_to_use_when_the_logo_can_be_localised_and_when_not()
    {
        // The published full run: the masked arms stop every attack; no maskless arm does; filtering does by dropping images.
        var advice = ExperimentReading.Read(Published("full-2026-12-06.json")).Single(l => l.StartsWith("Which defence", StringComparison.Ordinal));
        Assert.Contains("where the logo can be localised, masked-loss, detector-masked-loss and masked-update-projection keep every image and stop every attack", advice);
        Assert.Contains("where it cannot, no arm that keeps every image without a mask stopped every attack (the best by the named lift, scrub-captions, cut it by 96% and inversion's gain by 44%)", advice);
        Assert.Contains("filter-images stops every attack", advice);
    }

    [Fact]
    public void For_a_concept_no_mask_can_hide_the_reading_points_to_the_projection_and_its_limit()
    {
        var advice = ExperimentReading.Read(Published("stripes-2026-12-06.json")).Single(l => l.StartsWith("Which defence", StringComparison.Ordinal));
        Assert.DoesNotContain("can be localised", advice);
        Assert.Contains("(the best by the named lift, update-projection, cut it by 10% and inversion's gain by 32%)", advice);
        Assert.Contains("filter-images stops every attack", advice);
    }
}
