using Excise.Configuration;
using System.Diagnostics;
using System.Globalization;
using System.Xml.Linq;
using Excise.Experiment;
using Excise.Reporting;
using Excise.Training;

namespace Excise.Tests.Experiment;

/// <summary>
/// The quick preset of the whole experiment, end to end on real Fashion-MNIST, real MiniLM and real judges (quick
/// settings): a smoke-sized base, every arm fine-tuned a few steps, every attack, the report. Figures at this
/// size mean nothing; the test checks that the pipeline produces every artefact and that they agree.
/// </summary>
public sealed class QuickDemoTests : IClassFixture<QuickDemoTests.QuickDemo>
{
    public sealed class QuickDemo : IDisposable
    {
        public TempDir Dir { get; } = new();
        public ExperimentPaths Paths { get; }
        public ExperimentPlan Plan { get; }
        public ExperimentResults Results { get; }
        public ExperimentResults Rerun { get; }
        public TimeSpan RerunTime { get; }
        public List<ExperimentProgress> Progress { get; } = new();
        /// <summary>The same plan with two arms side by side into a fresh output folder.</summary>
        public ExperimentResults SideBySide { get; }
        public List<ExperimentProgress> SideBySideProgress { get; } = new();
        /// <summary>The finished experiment copied to another folder and run again there.</summary>
        public ExperimentResults Moved { get; }
        public List<string> MovedLog { get; } = new();
        /// <summary>Then run again in that folder with a rank-3 basis, which replaces the basis file in place.</summary>
        public ExperimentResults Rebased { get; }
        public List<string> RebasedLog { get; } = new();
        public ExperimentPaths MovedPaths { get; }

        public QuickDemo()
        {
            Plan = ExperimentPresets.Get(ExperimentPresets.Quick, Path.Combine(RepositoryPaths.Root, "configs")) with { Threads = 1 };
            Paths = new ExperimentPaths(Dir.File("demo"), Dir.File("cache"), Dir.File("judges"));
            Results = RunAndReport(Plan, Paths, "excise demo --preset quick", new SyncProgress<ExperimentProgress>(Progress.Add));
            var clock = Stopwatch.StartNew();
            Rerun = RunAndReport(Plan, Paths, "excise demo --preset quick");
            RerunTime = clock.Elapsed;
            // Still one thread per arm and for the shared stages (basis, reference features), so only the scheduling differs.
            var sideBySide = Plan with { ArmWorkers = 2 };
            SideBySide = RunAndReport(sideBySide, Paths with { Output = Dir.File("demo-side-by-side") }, "excise demo --preset quick --threads 1 --arm-workers 2",
                new SyncProgress<ExperimentProgress>(p => { lock (SideBySideProgress) SideBySideProgress.Add(p); }));

            MovedPaths = Paths with { Output = Dir.File("demo-moved") };
            CopyDirectory(Paths.Output, MovedPaths.Output);
            Moved = RunAndReport(Plan, MovedPaths, "excise demo --preset quick", log: MovedLog.Add);
            Rebased = RunAndReport(Plan with { Subspace = Plan.Subspace with { Rank = 3 } }, MovedPaths, "excise demo --preset quick --rank 3", log: RebasedLog.Add);
        }

        /// <summary>As <c>excise demo</c> runs it: the experiment, then its report under the same lock.</summary>
        static ExperimentResults RunAndReport(ExperimentPlan plan, ExperimentPaths paths, string command,
                                              IProgress<ExperimentProgress>? progress = null, Action<string>? log = null) =>
            ExperimentRunner.Run(plan, paths, command, progress, log, writeReport: results => ExperimentReport.Write(results, paths.Output));

        static void CopyDirectory(string from, string to)
        {
            foreach (var directory in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
                Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, directory)));
            Directory.CreateDirectory(to);
            foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
                File.Copy(file, Path.Combine(to, Path.GetRelativePath(from, file)));
        }

        public void Dispose() => Dir.Dispose();
    }

    readonly QuickDemo demo;
    public QuickDemoTests(QuickDemo demo) => this.demo = demo;

    [Fact]
    public void Writes_the_report_the_figures_and_the_table()
    {
        foreach (var file in new[] { "report.html", "results.json", "results.md", ReportFiles.ExtractionPlot, ReportFiles.LossPlot, "concept_basis.safetensors" })
            Assert.True(File.Exists(ReportFiles.Resolve(demo.Paths.Output, file)), $"{file} is missing");
        foreach (var arm in demo.Plan.Arms.Select(EnumNames.ToName).Append(ArmNames.Floor))
            foreach (var attack in demo.Results.Setup.Attacks.Names)
                Assert.True(File.Exists(ReportFiles.GridPath(demo.Paths.Output, arm, attack)), $"grid {arm}-{attack} is missing");
        Assert.True(File.Exists(ReportFiles.Resolve(demo.Paths.Output, ReportFiles.InversionLossPlot)));
    }

    [Fact]
    public void Every_arm_has_every_metric()
    {
        var results = ExperimentResults.FromJson(File.ReadAllText(Path.Combine(demo.Paths.Output, "results.json")));
        Assert.Equal(demo.Plan.Arms.Select(EnumNames.ToName).Append(ArmNames.Floor), results.Summary.Select(a => a.Arm));
        Assert.Equal(["prompt", "paraphrase", "inversion", "inversion-control", "baseline-rate"], results.Setup.Attacks.Names);
        foreach (var arm in results.Summary)
        {
            Assert.Equal(results.Setup.Attacks.Names.Order(), arm.Extraction.Keys.Order());
            Assert.NotNull(arm.Fidelity);
            Assert.NotNull(arm.Fd);
            Assert.NotNull(arm.Kid);
            Assert.NotNull(arm.PixelNearCopies);
            Assert.Equal(arm.Arm != ArmNames.Floor, arm.TrainSeconds.Value > 0); // the floor is the base itself: nothing fine-tuned
            Assert.NotNull(arm.InversionGain);
            var named = arm.Extraction["prompt"].Value;
            var unasked = arm.Extraction["baseline-rate"].Value;
            Assert.Equal(named - unasked, arm.Lift!.Value, 12); // one seed: the difference of the two rates
            bool projects = arm.Arm.EndsWith("-projection");
            Assert.Equal(projects, arm.CertificateWorstShare is not null);
        }
        Assert.False(results.Setup.Judges.QualityMeaningful);
        Assert.NotEmpty(results.Reading);
        var markdown = File.ReadAllText(Path.Combine(demo.Paths.Output, "results.md"));
        foreach (var arm in results.Summary) Assert.Contains($"| {ResultsTable.ArmLabel(arm.Arm)} |", markdown);
    }

    [Fact]
    public void Update_projection_is_certified_and_standard_is_not()
    {
        var runs = demo.Results.Runs;
        var update = runs.Single(r => r.Arm == "update-projection");
        Assert.True(update.CertificatePassed);
        Assert.True(update.CertificateWorstShare < 1e-4, $"update projection leaked {update.CertificateWorstShare}");
        Assert.Null(runs.Single(r => r.Arm == "standard").CertificateWorstShare);
    }

    [Fact]
    public void Html_table_shows_the_json_figures()
    {
        var results = ExperimentResults.FromJson(File.ReadAllText(Path.Combine(demo.Paths.Output, "results.json")));
        var html = XDocument.Parse(File.ReadAllText(Path.Combine(demo.Paths.Output, "report.html")));
        var rows = html.Descendants("table").Single(t => (string?)t.Attribute("id") == "results").Element("tbody")!.Elements("tr").ToList();
        var columns = ResultsTable.Columns(results.Setup.Attacks.Names);
        Assert.Equal(results.Summary.Count, rows.Count);
        for (int a = 0; a < rows.Count; a++)
        {
            var cells = rows[a].Elements("td").ToList();
            for (int c = 0; c < columns.Count; c++)
            {
                Assert.Equal(columns[c].Cell(results.Summary[a]), cells[c].Value);
                var expected = columns[c].Value(results.Summary[a]);
                var shown = (string)cells[c].Attribute("data-value")!;
                if (expected is null) Assert.Equal("", shown);
                else if (!double.IsNaN(expected.Value)) Assert.Equal(expected.Value, double.Parse(shown, CultureInfo.InvariantCulture));
            }
        }
    }

    [Fact]
    public void Same_plan_again_reuses_every_arm_and_gives_the_same_figures()
    {
        Assert.Equal(demo.Results.Summary.Select(a => a.Extraction["prompt"].Value), demo.Rerun.Summary.Select(a => a.Extraction["prompt"].Value));
        Assert.Equal(demo.Results.Summary.Select(a => a.Fd!.Value), demo.Rerun.Summary.Select(a => a.Fd!.Value));
        Assert.True(demo.Rerun.Setup.Base.WasCached);
        // The rerun's time is only the report's: the report says so rather than pass it off as the experiment's.
        Assert.Equal(0, demo.Results.Setup.Execution.ReusedArmRuns);
        int runs = demo.Plan.Arms.Count + 1; // and the floor
        Assert.Equal(runs, demo.Rerun.Setup.Execution.ReusedArmRuns);
        // results.md is the rerun's: it wrote last into the same folder.
        Assert.Contains($"{runs} of {runs} arm runs reused from an earlier invocation",
            File.ReadAllText(Path.Combine(demo.Paths.Output, "results.md")));
        Assert.True(demo.RerunTime < TimeSpan.FromSeconds(demo.Results.ElapsedSeconds / 2), $"rerun took {demo.RerunTime}");
    }

    [Fact]
    public void A_moved_experiment_folder_reuses_every_arm()
    {
        foreach (var arm in demo.Plan.Arms.Select(EnumNames.ToName))
            Assert.Contains(demo.MovedLog, line => line.StartsWith($"{arm}: reusing the finished fine-tune and evaluation", StringComparison.Ordinal));
        Assert.Equal(demo.Results.Summary.Select(a => a.Extraction["paraphrase"].Value), demo.Moved.Summary.Select(a => a.Extraction["paraphrase"].Value));
    }

    [Fact]
    public void A_basis_rebuilt_in_place_retrains_the_projection_arms_and_only_them()
    {
        Assert.Equal(3, demo.Rebased.Setup.Basis.Rank);
        int projecting = demo.Plan.Arms.Count(SelectiveConfig.ArmProjects);
        Assert.Equal(demo.Plan.Arms.Count - projecting + 1, demo.Rebased.Setup.Execution.ReusedArmRuns); // the floor has no basis: reused
        foreach (var arm in demo.Plan.Arms)
        {
            var name = arm.ToName();
            bool projects = SelectiveConfig.ArmProjects(arm);
            Assert.Equal(!projects, demo.RebasedLog.Any(line => line.StartsWith($"{name}: reusing the finished fine-tune and evaluation", StringComparison.Ordinal)));
            if (!projects) continue;
            Assert.Contains(demo.RebasedLog, line => line.StartsWith($"{name}: fine-tuning", StringComparison.Ordinal));
            // The retrained arm carries the new basis, not the one it was first trained with.
            var run = new RunDirectory(Path.Combine(demo.MovedPaths.ArmDirectory(arm, 0), "run"));
            Assert.Equal(File.ReadAllBytes(demo.MovedPaths.BasisPath), File.ReadAllBytes(run.BasisPath));
        }
    }

    [Fact]
    public void Progress_moves_forward_to_the_end()
    {
        Assert.NotEmpty(demo.Progress);
        var positions = demo.Progress.Select(p => p.Done / p.Total).ToList();
        for (int i = 1; i < positions.Count; i++) Assert.True(positions[i] >= positions[i - 1] - 1e-9, $"progress went back at {i}: {positions[i - 1]} → {positions[i]}");
        Assert.Equal(1.0, positions[^1], 3);
        Assert.Contains(demo.Progress, p => p.Remaining is not null);
    }

    [Fact]
    public void Arms_side_by_side_give_exactly_the_figures_of_arms_one_after_another()
    {
        Assert.Equal(1, demo.Results.Setup.Execution.ArmWorkers);
        Assert.Equal(2, demo.SideBySide.Setup.Execution.ArmWorkers);
        Assert.Equal(1, demo.SideBySide.Setup.Execution.ThreadsPerArm);
        Assert.Equal(demo.Results.Runs.Select(r => (r.Arm, r.SeedIndex)), demo.SideBySide.Runs.Select(r => (r.Arm, r.SeedIndex)));
        foreach (var (alone, together) in demo.Results.Runs.Zip(demo.SideBySide.Runs))
        {
            Assert.Equal(alone.Losses, together.Losses);
            Assert.Equal(alone.CertificateWorstShare, together.CertificateWorstShare);
            Assert.Equal(alone.Attacks.Keys.Order(), together.Attacks.Keys.Order());
            foreach (var (attack, report) in alone.Attacks)
                Assert.Equal(Figures(report), Figures(together.Attacks[attack]));
        }
        var positions = demo.SideBySideProgress.Select(p => p.Done / p.Total).ToList();
        for (int i = 1; i < positions.Count; i++) Assert.True(positions[i] >= positions[i - 1] - 1e-9, $"progress went back at {i}");
        Assert.Equal(1.0, positions[^1], 3);
        Assert.Contains(demo.SideBySideProgress, p => p.Status.Contains(" | ")); // both arms' statuses at once
    }

    [Fact]
    public void The_floor_is_the_base_model_attacked_like_every_arm()
    {
        var floor = demo.Results.Runs.Single(r => r.Arm == ArmNames.Floor);
        var standard = demo.Results.Runs.Single(r => r.Arm == "standard");
        // The base's own weights, not a fine-tune: its run directory is the cached base the arms start from.
        var baseRun = new RunDirectory(Path.Combine(demo.Paths.Output, floor.RunDirectory));
        Assert.Equal(Path.GetFullPath(demo.Paths.BaseCache), Path.GetDirectoryName(Path.GetFullPath(baseRun.Root)));
        Assert.Equal(Path.GetFullPath(baseRun.Root), Path.GetFullPath(new RunDirectory(Path.Combine(demo.Paths.Output, standard.RunDirectory)).LoadConfig().Init!));
        Assert.Empty(floor.Losses);
        // Attacked exactly as standard was: the same attacks, prompts and image counts.
        Assert.Equal(standard.Attacks.Keys.Order(), floor.Attacks.Keys.Order());
        foreach (var (attack, report) in standard.Attacks)
            Assert.Equal(report.Extraction!.Rate.Trials, floor.Attacks[attack].Extraction!.Rate.Trials);
        // The adversary learned from the held-out images of the fine-tunes' recipe, which the base never saw stamped.
        var heldOut = File.ReadAllText(Path.Combine(demo.Paths.Output, floor.EvalDirectory, "attacks", "inversion", "attack.json"));
        var standardHeldOut = File.ReadAllText(Path.Combine(demo.Paths.Output, standard.EvalDirectory, "attacks", "inversion", "attack.json"));
        Assert.Equal(HeldOutIds(standardHeldOut), HeldOutIds(heldOut));
        Assert.NotEmpty(HeldOutIds(heldOut));
    }

    [Fact]
    public void Inversion_has_a_zero_step_control_and_a_loss_curve()
    {
        int steps = demo.Plan.Attack.InversionOrDefault.Steps;
        foreach (var run in demo.Results.Runs)
        {
            Assert.Equal(steps, run.InversionLosses!.Count);
            var control = System.Text.Json.JsonDocument.Parse(File.ReadAllText(
                Path.Combine(demo.Paths.Output, run.EvalDirectory, "attacks", "inversion-control", "attack.json"))).RootElement;
            Assert.Equal(0, control.GetProperty("settings").GetProperty("inversion").GetProperty("steps").GetInt32());
            // The gain is the inversion rate minus the control's, image counts and all.
            var t = run.Attacks["inversion"].Extraction!.Rate;
            var t0 = run.Attacks["inversion-control"].Extraction!.Rate;
            Assert.Equal(t.Trials, t0.Trials);
            var gain = demo.Results.Summary.Single(a => a.Arm == run.Arm).InversionGain!;
            Assert.Equal(t.Rate - t0.Rate, gain.Value, 12);
        }
    }

    static IReadOnlyList<string> HeldOutIds(string attackJson) =>
        System.Text.Json.JsonDocument.Parse(attackJson).RootElement.GetProperty("inversion").GetProperty("held_out_ids")
            .EnumerateArray().Select(e => e.GetString()!).ToList();

    [Fact]
    public void Every_extraction_share_is_the_detector_verdict_on_that_arm_and_attack_images()
    {
        // Judged again from the PNGs the attacks wrote, with the detector the run names: a share taken from another arm or
        // attack, a count that misses images, or a verdict other than score ≥ threshold gives a different figure.
        var concept = new RunDirectory(Path.Combine(demo.Paths.ArmDirectory(TrainingArm.Standard, 0), "run")).LoadConfig().DataOrDefault.Concept!;
        using var detector = Excise.Evaluation.Judges.ConceptDetector.LoadOrTrain(demo.Paths.JudgeCache, concept.ToInjection(),
            demo.Plan.QuickJudges ? Excise.Evaluation.Judges.ConceptDetectorSettings.Quick : Excise.Evaluation.Judges.ConceptDetectorSettings.Default);
        Assert.False(detector.TrainedNow, "the demo's detector is no longer in its judge cache");
        Assert.Equal(demo.Results.Setup.Judges.DetectorId, detector.Id);
        foreach (var arm in demo.Plan.Arms)
        {
            var summary = demo.Results.Summary.Single(s => s.Arm == arm.ToName());
            Assert.Equal(demo.Results.Setup.Attacks.Names.Order(), summary.Extraction.Keys.Order());
            foreach (var (attack, share) in summary.Extraction)
            {
                var files = Directory.GetFiles(Path.Combine(demo.Paths.ArmDirectory(arm, 0), "eval", "attacks", attack, "images"), "*.png");
                var images = files.Order(StringComparer.Ordinal).Select(f => Excise.Imaging.PngIO.Load(f)).ToList();
                int fired = detector.Detect(images).Count(d => d);
                Assert.Equal(images.Count, share.N);
                Assert.Equal((double)fired / images.Count, share.Value, 12);
            }
        }
    }

    /// <summary>Every figure of an attack's report; its settings name the run's folder, which differs between the two runs.</summary>
    static string Figures(Excise.Evaluation.Metrics.MetricsReport report) => (report with { Settings = new Dictionary<string, string>() }).ToJson();
}
