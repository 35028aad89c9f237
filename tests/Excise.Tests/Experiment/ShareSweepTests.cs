using Excise.Attacks;
using Excise.Experiment;
using Excise.Reporting;
using Excise.Training;

namespace Excise.Tests.Experiment;

/// <summary>The stamped-share sweep on the quick preset: one arm, two shares, real data, judges and attacks.</summary>
public sealed class ShareSweepTests
{
    [Fact]
    public void Each_share_is_a_whole_experiment_with_that_many_stamped_images_and_the_sweep_tables_them()
    {
        using var dir = new TempDir();
        var plan = ExperimentPresets.Get(ExperimentPresets.Quick, Path.Combine(RepositoryPaths.Root, "configs")) with
        {
            Threads = 1, Arms = [TrainingArm.Standard], Attacks = [AttackKind.Prompt, AttackKind.BaselineRate],
        };
        var paths = new ExperimentPaths(dir.File("sweep"), dir.File("cache"), dir.File("judges"));
        double[] shares = [0.5, 0.1];
        var progress = new List<ShareSweepProgress>();
        var sweep = ShareSweep.Run(plan, paths, shares, "excise demo --preset quick --shares 0.5,0.1",
            progress: new SyncProgress<ShareSweepProgress>(progress.Add), writeReport: ExperimentReport.Write);
        ShareSweepReport.Write(sweep, paths.Output);

        Assert.Equal([0.1, 0.5], sweep.Shares);
        var stamped = sweep.Shares.Select(s => ExperimentResults.FromJson(File.ReadAllText(Path.Combine(ShareSweep.Folder(paths.Output, s), "results.json"))).Setup)
            .Select(setup => (double)setup.Concept.StampedImages / setup.Concept.FinetuneImages).ToList();
        // data.concept.stamp_fraction is drawn per image: 512 images give the share to within a few points.
        Assert.InRange(stamped[0], 0.06, 0.14);
        Assert.InRange(stamped[1], 0.44, 0.56);
        Assert.True(File.Exists(Path.Combine(ShareSweep.Folder(paths.Output, 0.1), ReportFiles.Html)));
        // The bar runs over the whole sweep: the first share fills its first half, the second the rest, in share order.
        Assert.Equal([0.1, 0.5], progress.Select(p => p.Share).Distinct());
        Assert.All(progress.Where(p => p.Index == 0), p => Assert.InRange(p.Fraction, 0, 0.5));
        Assert.All(progress.Where(p => p.Index == 1), p => Assert.InRange(p.Fraction, 0.5, 1));
        Assert.InRange(progress[^1].Fraction, 0.9, 1.0);

        // A row per arm (and the floor) per share, read back from sweep.json as written.
        var loaded = ShareSweepResults.Load(paths.Output);
        Assert.Equal(4, loaded.Rows.Count);
        Assert.Equal(sweep.Rows.Select(r => (r.Arm, r.Share, r.Named?.Value)), loaded.Rows.Select(r => (r.Arm, r.Share, r.Named?.Value)));
        var markdown = File.ReadAllText(Path.Combine(paths.Output, ShareSweepReport.Markdown));
        Assert.Contains("| arm | 10% | 50% |", markdown);
        Assert.Contains("| base (never saw the logo) |", markdown);
        Assert.True(File.Exists(ReportFiles.Resolve(paths.Output, ShareSweepReport.NamedPlot)));
        // The charts are in the report, linked where they were written.
        Assert.Contains($"]({ShareSweepReport.NamedPlot})", markdown);
        Assert.Contains($"]({ShareSweepReport.UnaskedPlot})", markdown);

        // Run again: every share's experiment reuses its fine-tunes and evaluations.
        var log = new List<string>();
        ShareSweep.Run(plan, paths, shares, "excise demo --preset quick --shares 0.5,0.1", log: log.Add);
        Assert.All(sweep.Shares, s => Assert.Equal(2, ExperimentResults.FromJson(File.ReadAllText(Path.Combine(ShareSweep.Folder(paths.Output, s), "results.json"))).Setup.Execution.ReusedArmRuns));
    }
}
