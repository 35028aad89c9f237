using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Excise.Attacks;
using Excise.Configuration;
using Excise.Data;
using Excise.Diffusion;
using Excise.Distributed;
using Excise.Evaluation;
using Excise.Evaluation.Metrics;
using Excise.Imaging;
using Excise.Projection;
using Excise.Serialization;
using Excise.Text;
using Excise.Torch;
using Excise.Training;

namespace Excise.Experiment;

/// <summary>Where the experiment writes and what it may reuse.</summary>
/// <param name="BaseCache">Trained base models, one folder per config hash (shared with <c>excise demo</c> runs before it).</param>
/// <param name="JudgeCache">Trained judges, keyed by their settings.</param>
public sealed record ExperimentPaths(string Output, string BaseCache, string JudgeCache)
{
    public string BasisPath => Path.Combine(Output, "concept_basis.safetensors");
    public string ArmDirectory(TrainingArm arm, int seedIndex) => Path.Combine(Output, "arms", arm.ToName(), $"seed-{seedIndex}");
    /// <summary>The base model attacked at one seed's attack settings: the floor of every extraction figure.</summary>
    public string FloorDirectory(int seedIndex) => Path.Combine(Output, "arms", ArmNames.Floor, $"seed-{seedIndex}");
    /// <summary>The masks the detector-masked-loss arm learns around (every seed trains on the same data, so one folder serves all).</summary>
    public string DetectorMaskFolder => Path.Combine(Output, "detector-masks");
}

/// <summary>Where the whole experiment is: one bar across stages, in units of estimated work, with an ETA.</summary>
public sealed record ExperimentProgress(string Stage, double Done, double Total, string Status, TimeSpan Elapsed, TimeSpan? Remaining);

public static class ArmNames
{
    /// <summary>
    /// The row of the model that never saw the concept: the base, attacked exactly as the arms are. It is no defence; its
    /// figures are the floor each extraction rate is read against (what the judge and the attack report with no logo learned).
    /// </summary>
    public const string Floor = "base";
}

/// <summary>
/// The selective-learning experiment: base model (cached) → concept basis → judges → every arm × seed
/// fine-tuned from the same base with the same data and seed → attacks and judges → results.json (and, through the
/// caller's <c>writeReport</c>, results.md, plots, grids and report.html: <c>Reporting.ExperimentReport.Write</c>).
/// A finished arm is reused when its config and the evaluation settings match, so an interrupted experiment continues
/// where it stopped.
/// </summary>
public static class ExperimentRunner
{
    public const string OutcomeFile = "outcome.json";
    public const string ResultsFile = "results.json";

    /// <param name="group">
    /// The ranks of an <c>mpirun</c> job to fan the arm runs out over (null or one process: everything here). Every rank
    /// calls this with the same plan and paths, on a filesystem all of them see; every rank returns the results, which
    /// rank 0 alone computed and wrote (with the report, which only rank 0's <paramref name="writeReport"/> writes).
    /// </param>
    public static ExperimentResults Run(ExperimentPlan plan, ExperimentPaths paths, string command,
                                        IProgress<ExperimentProgress>? progress = null, Action<string>? log = null,
                                        Action<ExperimentResults>? writeReport = null, CancellationToken cancel = default,
                                        ProcessGroup? group = null)
    {
        log ??= _ => { };
        plan.Validate();
        var clock = Stopwatch.StartNew();
        if (group is { Size: > 1 }) return RunOnRanks(plan, paths, command, progress, log, writeReport, cancel, group, clock);
        using var outputLock = RunLock.Acquire(paths.Output, "experiment");
        return Execute(plan, paths, command, progress, log, writeReport, cancel, Pass.Everything, clock).Results!;
    }

    /// <summary>What one call of <see cref="Execute"/> does on this process.</summary>
    enum PassKind
    {
        /// <summary>The whole experiment: every shared stage, every job (or its cached outcome), the results and the report.</summary>
        Everything,
        /// <summary>The shared stages only (base model, concept basis, judges, detector masks), into the caches and the output folder.</summary>
        Prepare,
        /// <summary>This rank's jobs only, reading what <see cref="Prepare"/> wrote and writing nothing shared.</summary>
        Jobs,
    }

    /// <param name="Rank">With <see cref="PassKind.Jobs"/>: this process runs the jobs whose index modulo <paramref name="Ranks"/> is its rank.</param>
    /// <param name="ReusedOnRanks">With several ranks: the arm runs the ranks found finished, which the closing pass (all cached by then) reports as reused.</param>
    sealed record Pass(PassKind Kind, int Rank = 0, int Ranks = 1, int? ReusedOnRanks = null)
    {
        public static readonly Pass Everything = new(PassKind.Everything);

        /// <summary>Whether job <paramref name="index"/> (the arm × seed runs in order, then the floors) is this process's to run.</summary>
        public bool Runs(int index) => Kind != PassKind.Jobs || index % Ranks == Rank;
    }

    /// <summary>
    /// The experiment fanned out over the ranks of an mpirun job. Rank 0 prepares what every job shares (base, basis,
    /// judges, masks) while the others wait; then every rank runs its share of the jobs (job i on rank i mod N, each a
    /// one-process fine-tune and evaluation, cached in its own folder as always); then rank 0 runs the experiment once
    /// more, which finds every job cached and only reads, summarises and reports. The figures are a one-process run's
    /// with the same threads: which process runs a job changes nothing it computes, as with <c>--arm-workers</c>.
    /// </summary>
    static ExperimentResults RunOnRanks(ExperimentPlan plan, ExperimentPaths paths, string command, IProgress<ExperimentProgress>? progress,
                                        Action<string> log, Action<ExperimentResults>? writeReport, CancellationToken cancel, ProcessGroup group, Stopwatch clock)
    {
        // Waits here can last as long as a base model's training: poll, so a waiting rank leaves the CPU to the working one.
        var poll = TimeSpan.FromMilliseconds(100);
        // Rank 0 holds the folder against other invocations for the whole job; the ranks of this one never write the same file.
        using var outputLock = group.IsRoot ? RunLock.Acquire(paths.Output, "experiment") : null;
        if (group.IsRoot)
        {
            var labels = JobLabels(plan);
            log($"Fanning {labels.Count} jobs out over {group.Size} ranks: " + string.Join("; ", Enumerable.Range(0, group.Size).Select(rank =>
                $"rank {rank}: {string.Join(", ", labels.Where((_, i) => i % group.Size == rank).DefaultIfEmpty("none"))}")) + ".");
            Execute(plan, paths, command, progress, log, null, cancel, new Pass(PassKind.Prepare), clock);
        }
        group.WaitForAll(poll);
        var mine = Execute(plan, paths, command, group.IsRoot ? progress : null, log, null, cancel, new Pass(PassKind.Jobs, group.Rank, group.Size), clock);
        group.WaitForAll(poll);
        int reusedOnRanks = (int)group.Sum(mine.Reused);
        ExperimentResults? results = null;
        if (group.IsRoot)
        {
            log("Every rank has finished its jobs: summarising them all.");
            results = Execute(plan, paths, command, progress, log, writeReport, cancel, new Pass(PassKind.Everything, 0, group.Size, reusedOnRanks), clock).Results;
        }
        group.WaitForAll(poll);
        return results ?? ExperimentResults.FromJson(File.ReadAllText(Path.Combine(paths.Output, ResultsFile)));
    }

    /// <summary>The jobs in the order the ranks divide them: every arm at seed 0, then at seed 1…, then the floor at each seed.</summary>
    static List<string> JobLabels(ExperimentPlan plan)
    {
        string Label(string arm, int seed) => plan.Seeds > 1 ? $"{arm} (seed {seed})" : arm;
        return Enumerable.Range(0, plan.Seeds).SelectMany(seed => plan.Arms.Select(arm => Label(arm.ToName(), seed)))
            .Concat(Enumerable.Range(0, plan.Seeds).Select(seed => Label(ArmNames.Floor, seed))).ToList();
    }

    /// <summary>A file or folder rank 0 prepared; on another machine it is missing when the folders are not shared.</summary>
    static string Prepared(string path, string what, Pass pass) =>
        File.Exists(path) || Directory.Exists(path) ? path
            : throw new InvalidOperationException($"Rank {pass.Rank} of {pass.Ranks} does not see {what} rank 0 prepared ({path}). " +
                                                  "Every rank needs the output folder, the base cache and the judges' cache on a filesystem all of them share, at the same path.");

    /// <returns>The results (only from <see cref="PassKind.Everything"/>) and how many arm runs were served from their cache.</returns>
    static (ExperimentResults? Results, int Reused) Execute(ExperimentPlan plan, ExperimentPaths paths, string command,
                                                           IProgress<ExperimentProgress>? progress, Action<string> log,
                                                           Action<ExperimentResults>? writeReport, CancellationToken cancel, Pass pass, Stopwatch clock)
    {
        TorchRuntime.ConfigureThreads(plan.Threads);
        var threadOverride = $"threads={plan.Threads}";

        var baseConfig = RunConfig.Load(plan.BaseConfig, plan.BaseOverrides.Append(threadOverride));
        var shipped = ShippedBase(plan, baseConfig, log);
        var baseRun = shipped ?? new RunDirectory(Path.Combine(paths.BaseCache, $"{baseConfig.Name}-{baseConfig.Hash(includeStepBudget: true)}"));
        bool baseCached = File.Exists(baseRun.ModelPath);
        var budget = new WorkBudget(plan, baseCached ? 0 : baseConfig.TrainingOrDefault.Steps * baseConfig.TrainingOrDefault.BatchSize / 32.0, clock, progress);

        // 1. The base model, trained on clean data: shipped with the project, cached, or trained now.
        if (shipped is not null) log($"Fine-tuning from the shipped base {baseRun.Root} (SHA-256 {Digest.VerifyPin(baseRun.ModelPath)}).");
        else if (!baseCached && pass.Kind == PassKind.Jobs) Prepared(baseRun.ModelPath, "the base model", pass);
        else if (!baseCached)
        {
            budget.Stage("base model");
            log($"Training the base model ({baseConfig.TrainingOrDefault.Steps} steps) into {baseRun.Root}…");
            bool resume = new CheckpointStore(baseRun.CheckpointsDir).CompleteCheckpoints().Count > 0;
            TrainingJob.Run(baseConfig, baseRun, resume, budget.Training(baseConfig, "base model"), log, cancel);
        }
        else log($"Reusing the cached base model {baseRun.Root}.");
        budget.Advance(budget.BaseUnits, "base model ready", job: "base model");
        var baseSummary = RunSummary.Load(baseRun);
        var baseDigest = Digest.Sha256(baseRun.ModelPath);

        // 2. The concept basis, built once for every projected arm.
        var probe = LoadArmConfig(plan, baseRun, baseDigest, TrainingArm.Standard, 0, null, threadOverride);
        var concept = probe.DataOrDefault.Concept
            ?? throw new ArgumentException($"{plan.FinetuneConfig} has no data.concept: there is no concept to keep the model from learning.");
        budget.Stage("concept basis");
        ConceptBasisInfo? basisInfo = null;
        ConceptLeakage? leakage = null;
        // The jobs only read the basis file: rebuilding it in place would rewrite it under another rank's running fine-tune.
        if (pass.Kind == PassKind.Jobs) Prepared(paths.BasisPath, "the concept basis", pass);
        else using (var encoder = MiniLmTextEncoder.Create(probe.TextOrDefault.MaxLength))
        using (var basis = ConceptSubspaceBuilder.Build(encoder, [concept.Phrase], plan.Subspace))
        {
            basis.Save(paths.BasisPath);
            basisInfo = basis.Info;
            leakage = ConceptLeakage.MeasureHeldOut(encoder, basis, concept.Phrase);
            if (leakage is not null)
                log($"On {leakage.Prompts} held-out prompts (the concept's paraphrases), {leakage.ConceptTokensOutside:P1} of the paraphrase tokens' state energy " +
                    $"and {leakage.ChangesOutside:P1} of their effect on the prompt lie outside the basis.");
            log($"Concept basis for \"{concept.Phrase}\": rank {basis.Rank} ({plan.Subspace.Mode.ToName()}, energy kept {basis.Info.EnergyKept:F4}).");
        }

        // 3. The judges and the real reference images.
        budget.Stage("judges");
        var evaluation = EvaluationFor(plan, paths);
        using var context = EvaluationContext.Create(evaluation, concept, log,
            new SyncProgress<Excise.Evaluation.Judges.JudgeTrainingProgress>(p => budget.Status($"{p.Judge}: {p.Phase} {p.Step}/{p.TotalSteps}")));
        budget.Advance(WorkBudget.JudgeUnits, "judges ready");
        (string Folder, Evaluation.Judges.DetectorMaskReport? Report)? detectorMasks = !plan.Arms.Contains(TrainingArm.DetectorMaskedLoss) ? null
            : pass.Kind == PassKind.Jobs ? (Prepared(paths.DetectorMaskFolder, "the detector masks", pass), null) // written anew on every run: only rank 0 does
            : WriteDetectorMasks(plan, paths, probe, concept, budget, log);
        if (pass.Kind == PassKind.Prepare) return (null, 0);

        // 4. Every arm × seed: fine-tune from the same base, then attack and judge (side by side if asked).
        var jobs = Enumerable.Range(0, plan.Seeds).SelectMany(seed => plan.Arms.Select(arm => (Arm: arm, Seed: seed))).ToList();
        // Scheduled for all the jobs even when this rank runs some of them: the threads per arm, and so the figures, stay a one-process run's.
        var schedule = ArmSchedule.For(plan.ArmWorkers, plan.Threads, jobs.Count);
        if (schedule.Workers > 1)
            log($"Running {schedule.Workers} arms at a time, {schedule.ThreadsPerArm} thread{(schedule.ThreadsPerArm == 1 ? "" : "s")} each.");
        var myJobs = Enumerable.Range(0, jobs.Count).Where(pass.Runs).ToList();
        var armRuns = schedule.Run(myJobs.Count, (i, token) =>
        {
            var (arm, seed) = jobs[myJobs[i]];
            var config = LoadArmConfig(plan, baseRun, baseDigest, arm, seed, paths.BasisPath, $"threads={schedule.ThreadsPerArm}", detectorMasks?.Folder);
            return RunArm(plan, paths, config, arm, seed, evaluation, context, budget, log, token);
        }, cancel).ToList();
        // 5. The floor: the base model, which never saw the concept, under the same attacks at every seed.
        var floorRuns = Enumerable.Range(0, plan.Seeds).Where(seed => pass.Runs(jobs.Count + seed))
            .Select(seed => RunFloor(plan, paths, baseRun, baseSummary.FinalLoss,
                                     LoadArmConfig(plan, baseRun, baseDigest, TrainingArm.Standard, seed, null, threadOverride), seed, evaluation, context, budget, log, cancel))
            .ToList();
        armRuns.AddRange(floorRuns);
        if (pass.Kind == PassKind.Jobs) return (null, armRuns.Count(r => r.Reused));
        var outcomes = armRuns.Select(r => r.Outcome).ToList();

        // 6. Summaries, the reading, results.json, and the report (written by the caller's writer, under the same lock).
        var armNames = plan.Arms.Select(EnumNames.ToName).Append(ArmNames.Floor).ToList();
        var attackNames = plan.Attacks.Select(EnumNames.ToName).ToList();
        var summary = armNames.Select(arm => Summarise(arm, outcomes.Where(o => o.Arm == arm).ToList())).ToList();
        var training = probe.TrainingOrDefault;
        var setup = new ExperimentSetup(
            new ExecutionSetup(plan.Preset, command, armNames, plan.Seeds, $"{Environment.ProcessorCount} cores, {Environment.OSVersion}",
                               TorchSharp.torch.get_num_threads(), schedule.Workers, schedule.ThreadsPerArm,
                               pass.ReusedOnRanks ?? armRuns.Count(r => r.Reused), pass.Ranks),
            DescribeConcept(concept, probe, paths, outcomes),
            new BaseSetup(baseRun.Root, baseCached, baseSummary.Steps, baseSummary.ElapsedSeconds, ModelParameterCount(baseRun),
                          $"all-MiniLM-L6-v2 (ONNX), max length {probe.TextOrDefault.MaxLength}", Shipped: shipped is not null, Sha256: baseDigest),
            new FinetuneSetup(training.Steps, training.BatchSize, training.LearningRate),
            new BasisSetup(basisInfo!.Mode.ToName(), basisInfo.Rank, basisInfo.EnergyKept, ProjectedWeights(paths, outcomes), leakage),
            DescribeAttacks(plan.Attack, attackNames),
            DescribeJudges(plan, context, detectorMasks?.Report));
        var results = new ExperimentResults(setup, summary, outcomes, [], clock.Elapsed.TotalSeconds, DateTime.UtcNow);
        results = results with { Reading = ExperimentReading.Read(results) };
        AtomicFile.WriteAllText(Path.Combine(paths.Output, ResultsFile), results.ToJson());
        if (writeReport is not null)
        {
            writeReport(results);
            budget.Advance(0, "report written");
        }
        return (results, setup.Execution.ReusedArmRuns);
    }

    /// <summary>
    /// The plan's shipped base, when it has one and the files are there: checked to be pinned (its SHA-256 is verified on
    /// every load) and trained by the plan's base recipe, so a changed configs/base.json is never answered with weights
    /// made by another. Null: the base is trained (or taken from the cache) as configured.
    /// </summary>
    public static RunDirectory? ShippedBase(ExperimentPlan plan, RunConfig baseConfig, Action<string> log)
    {
        if (plan.ShippedBase is null) return null;
        var run = new RunDirectory(plan.ShippedBase);
        if (!File.Exists(run.ModelPath))
        {
            log($"No shipped base at {run.Root}: training the base instead.");
            return null;
        }
        if (!File.Exists(Digest.PinPath(run.ModelPath)))
            throw new InvalidDataException($"{run.ModelPath}: a shipped base must be pinned by its SHA-256 ({Path.GetFileName(Digest.PinPath(run.ModelPath))} is missing).");
        string shippedRecipe = run.LoadConfig().Hash(includeStepBudget: true), configured = baseConfig.Hash(includeStepBudget: true);
        if (shippedRecipe != configured)
            throw new ArgumentException($"The shipped base {run.Root} was trained by another recipe (config hash {shippedRecipe}) than {plan.BaseConfig} " +
                                        $"with its overrides ({configured}). Train the configured base with --train-base, or drop the base overrides.");
        return run;
    }

    /// <summary>The fine-tuning config of one arm at one seed: the preset's budget, then the arm, seed, base and basis.</summary>
    /// <param name="baseDigest">The SHA-256 of the base's weights (hashed once per experiment, not once per arm).</param>
    static RunConfig LoadArmConfig(ExperimentPlan plan, RunDirectory baseRun, string baseDigest, TrainingArm arm, int seedIndex, string? basisPath,
                                   string threadOverride, string? detectorMasks = null)
    {
        var baseSeed = ConfigLoader.LoadFile<RunConfig>(plan.FinetuneConfig, plan.FinetuneOverrides).Seed;
        var overrides = plan.FinetuneOverrides.Concat(
        [
            $"init={baseRun.Root}",
            // Which base, by content: a base replaced at the same path (a new shipped base) retrains every arm.
            $"init_sha256=\"{baseDigest}\"",
            $"selective.arm={arm.ToName()}",
            $"seed={baseSeed + seedIndex}",
            threadOverride,
        ]).ToList();
        if (SelectiveConfig.ArmProjects(arm))
        {
            if (basisPath is not null) overrides.Add($"selective.basis={basisPath}");
            overrides.AddRange(plan.ProjectionOverrides ?? []);
        }
        if (arm == TrainingArm.DetectorMaskedLoss)
        {
            if (detectorMasks is null) throw new InvalidOperationException("the detector-masked-loss arm runs only after its masks are written.");
            // Pinned by content, so new masks (another detector, other settings) fine-tune the arm again.
            overrides.Add($"selective.mask_folder={detectorMasks}");
            overrides.Add($"selective.mask_folder_sha256=\"{ConceptMaskFolder.ContentHash(detectorMasks)}\"");
        }
        return RunConfig.Load(plan.FinetuneConfig, overrides);
    }

    /// <summary>
    /// The detector-masked-loss arm's masks: a detector of the concept trained as the judge is but with its own seed (a
    /// user's detector of their logo, not the weights that later count it) flags the training images and localises the
    /// concept by occlusion. Rewritten on every run (it takes seconds to a minute); the arm's config pins their hash.
    /// </summary>
    static (string Folder, Evaluation.Judges.DetectorMaskReport Report) WriteDetectorMasks(ExperimentPlan plan, ExperimentPaths paths, RunConfig probe, ConceptConfig concept, WorkBudget budget, Action<string> log)
    {
        budget.Status("detector masks: training the user's detector");
        using var detector = Evaluation.Judges.ConceptDetector.LoadOrTrain(paths.JudgeCache, concept.ToInjection(),
            Evaluation.Judges.ConceptDetectorSettings.For(plan.QuickJudges).ForDefender());
        budget.Status("detector masks: localising the concept");
        var folder = paths.DetectorMaskFolder;
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        var report = Evaluation.Judges.ConceptLocaliser.WriteFolder(probe, detector, plan.DetectorMasks ?? new Evaluation.Judges.LocaliserSettings(), folder);
        var q = report.Quality;
        log($"Detector masks: {report.Masks} of the training images flagged and masked in {report.Seconds:F0} s" + (q is null ? "." :
            $"; {q.DetectionRecall.Rate:P1} of the {q.Carrying} stamped images flagged (precision {q.DetectionPrecision.Rate:P1}), mean IoU {q.MeanIoU:F2}, " +
            $"{q.Coverage:P1} of the logo's pixels covered ({q.CoverageWithMargin:P1} with the {q.Margin}-pixel margin), {q.MaskedShareOfRest:P1} of the rest hidden."));
        return (folder, report);
    }

    static EvaluationSettings EvaluationFor(ExperimentPlan plan, ExperimentPaths paths) =>
        new(plan.Attacks, plan.Attack, paths.JudgeCache, plan.ReferenceImages, plan.ResNetImages, plan.MemorisationTrainImages, plan.QuickJudges);

    /// <returns>The arm's outcome, and whether it was served whole from an earlier invocation.</returns>
    static (ArmSeedOutcome Outcome, bool Reused) RunArm(ExperimentPlan plan, ExperimentPaths paths, RunConfig config, TrainingArm arm, int seedIndex,
                                 EvaluationSettings evaluation, EvaluationContext context, WorkBudget budget, Action<string> log, CancellationToken cancel)
    {
        var armName = arm.ToName();
        var label = plan.Seeds > 1 ? $"{armName} (seed {seedIndex})" : armName;
        var directory = paths.ArmDirectory(arm, seedIndex);
        var run = new RunDirectory(Path.Combine(directory, "run"));
        var evalDir = Path.Combine(directory, "eval");
        var attackSettings = evaluation.Attack with { Seed = evaluation.Attack.Seed + seedIndex };
        var armEvaluation = evaluation with { Attack = attackSettings };
        var fingerprint = Fingerprint(config, armEvaluation, context);
        var trainUnits = WorkBudget.TrainingUnits(config);
        var evalUnits = budget.EvaluationUnits;

        var outcomePath = Path.Combine(evalDir, OutcomeFile);
        if (TryLoadOutcome(outcomePath, fingerprint) is { } cached && File.Exists(run.ModelPath))
        {
            log($"{label}: reusing the finished fine-tune and evaluation in {directory}.");
            budget.Advance(trainUnits + evalUnits, $"{label} reused", job: label);
            return (cached, true);
        }

        var armLog = (string message) => log($"{label}: {message}");
        budget.Status($"{label}: fine-tuning", job: label);
        TrainingSummary? trained = null;
        bool sameBasis = BasisDigest(config.SelectiveOrDefault.Basis) == BasisDigest(File.Exists(run.BasisPath) ? run.BasisPath : null);
        if (File.Exists(run.ModelPath) && run.HasConfig && sameBasis && run.LoadConfig().Hash(includeStepBudget: true) == config.Hash(includeStepBudget: true))
            log($"{label}: reusing the finished fine-tune in {run.Root}.");
        else
        {
            bool resume = new CheckpointStore(run.CheckpointsDir).Latest() is { } latest && run.HasConfig && sameBasis
                && run.LoadConfig().Hash() == config.Hash();
            if (!resume && Directory.Exists(run.Root)) Directory.Delete(run.Root, recursive: true);
            log($"{label}: fine-tuning {config.TrainingOrDefault.Steps} steps{(resume ? " (resuming)" : "")}…");
            trained = TrainingJob.Run(config, run, resume, budget.Training(config, label), armLog, cancel).Summary;
        }
        budget.Advance(trainUnits, $"{label} trained", job: label);
        budget.Status($"{label}: attacking", job: label);
        var (reports, attackSeconds, inversionLosses) = Evaluate(context, run, armEvaluation, evalDir, null, label, budget, armLog, cancel);

        var summary = RunSummary.Load(run);
        var outcome = new ArmSeedOutcome(armName, seedIndex, config.Seed, Relative(paths.Output, run.Root), Relative(paths.Output, evalDir),
            TrainSeconds: summary.ElapsedSeconds,
            FinalLoss: summary.FinalLoss,
            Losses: trained?.Losses ?? LossesFromMetrics(run),
            ProjectionShare: summary.ProjectionShareOfTraining,
            CertificateWorstShare: summary.CertificateWorstShare,
            CertificatePassed: summary.CertificatePassed,
            reports, attackSeconds, fingerprint, inversionLosses);
        AtomicFile.WriteAllText(outcomePath, JsonSerializer.Serialize(outcome, RecordJson.Options));
        GC.Collect();
        return (outcome, false);
    }

    /// <summary>
    /// Attacks the base model under the standard arm's data recipe at one seed (same concept, held-out adversary images,
    /// attack seed and judges as every arm of that seed): the rate each attack reaches on a model that never saw the logo.
    /// </summary>
    static (ArmSeedOutcome Outcome, bool Reused) RunFloor(ExperimentPlan plan, ExperimentPaths paths, RunDirectory baseRun, double baseFinalLoss,
                                   RunConfig recipe, int seedIndex,
                                   EvaluationSettings evaluation, EvaluationContext context, WorkBudget budget, Action<string> log, CancellationToken cancel)
    {
        var label = plan.Seeds > 1 ? $"{ArmNames.Floor} (seed {seedIndex})" : ArmNames.Floor;
        var evalDir = Path.Combine(paths.FloorDirectory(seedIndex), "eval");
        var floorEvaluation = evaluation with { Attack = evaluation.Attack with { Seed = evaluation.Attack.Seed + seedIndex } };
        var baseConfig = baseRun.LoadConfig();
        // The recipe's init_sha256 is the base's content hash: the fingerprint changes when the base does.
        var fingerprint = Fingerprint(recipe, floorEvaluation, context);
        var outcomePath = Path.Combine(evalDir, OutcomeFile);
        if (TryLoadOutcome(outcomePath, fingerprint) is { } cached)
        {
            log($"{label}: reusing the never-saw-it evaluation in {evalDir}.");
            budget.Advance(budget.EvaluationUnits, $"{label} reused", job: label);
            return (cached, true);
        }

        budget.Status($"{label}: attacking the model that never saw the concept", job: label);
        var (reports, attackSeconds, inversionLosses) = Evaluate(context, baseRun, floorEvaluation, evalDir, recipe, label, budget,
                                                                  message => log($"{label}: {message}"), cancel);

        var outcome = new ArmSeedOutcome(ArmNames.Floor, seedIndex, baseConfig.Seed, Relative(paths.Output, baseRun.Root), Relative(paths.Output, evalDir),
            TrainSeconds: 0, FinalLoss: baseFinalLoss, Losses: [], ProjectionShare: 0,
            CertificateWorstShare: null, CertificatePassed: null, reports, attackSeconds, fingerprint, inversionLosses);
        AtomicFile.WriteAllText(outcomePath, JsonSerializer.Serialize(outcome, RecordJson.Options));
        GC.Collect();
        return (outcome, false);
    }

    /// <summary>
    /// Attacks and judges one victim into a fresh <paramref name="evalDir"/> (an evaluation without a matching outcome is
    /// stale or partial), advancing the budget attack by attack: every attack's metrics and seconds, and the adversary's losses.
    /// </summary>
    static (Dictionary<string, MetricsReport> Reports, Dictionary<string, double> AttackSeconds, IReadOnlyList<double>? InversionLosses) Evaluate(
        EvaluationContext context, RunDirectory run, EvaluationSettings evaluation, string evalDir, RunConfig? recipe, string label,
        WorkBudget budget, Action<string> log, CancellationToken cancel)
    {
        if (Directory.Exists(evalDir)) Directory.Delete(evalDir, recursive: true);
        double attackUnitsDone = 0;
        var attackSeconds = new Dictionary<string, double>();
        var reports = new Dictionary<string, MetricsReport>();
        IReadOnlyList<double>? inversionLosses = null;
        RunEvaluator.Evaluate(context, run, evaluation, evalDir, log,
            new SyncProgress<AttackProgress>(p => budget.Status($"{label}: {p.Phase} {p.Done}/{p.Total}", job: label)), cancel,
            done =>
            {
                var name = done.Kind.ToName();
                reports[name] = done.Metrics;
                attackSeconds[name] = done.Timing.Total.TotalSeconds + done.JudgeTime.TotalSeconds;
                if (done.Kind == AttackKind.Inversion) inversionLosses = done.Inversion?.StepLosses;
                double units = budget.AttackUnits(done.Kind);
                attackUnitsDone += units;
                budget.Advance(units, $"{label}: {name} done");
            }, recipe);
        budget.Advance(Math.Max(0, budget.EvaluationUnits - attackUnitsDone), $"{label} evaluated", job: label);
        return (reports, attackSeconds, inversionLosses);
    }

    static string Relative(string root, string path) => Path.GetRelativePath(root, path);

    /// <summary>
    /// Identifies what an outcome was computed from, so a changed config, basis, budget or judge is never served from
    /// an old outcome (a basis rebuilt in place with another mode or energy included), while moving the folder is.
    /// </summary>
    static string Fingerprint(RunConfig config, EvaluationSettings evaluation, EvaluationContext context)
    {
        var text = string.Join("\n", config.Hash(includeStepBudget: true), BasisDigest(config.SelectiveOrDefault.Basis),
                               JsonSerializer.Serialize(evaluation with { JudgeCache = "" }),
                               context.Classifier.Id, context.Detector.Id, context.ResNet?.Id ?? "no-resnet");
        return Digest.Short(text);
    }

    /// <summary>The SHA-256 of a basis file's bytes ("none" for arms without one).</summary>
    static string BasisDigest(string? path) => path is null ? "none" : Digest.Sha256(path);

    static ArmSeedOutcome? TryLoadOutcome(string path, string fingerprint)
    {
        if (!File.Exists(path)) return null;
        try
        {
            var outcome = JsonSerializer.Deserialize<ArmSeedOutcome>(File.ReadAllText(path), RecordJson.Options);
            return outcome?.Fingerprint == fingerprint ? outcome : null;
        }
        catch (JsonException)
        {
            return null; // A damaged outcome is recomputed, never trusted.
        }
    }

    /// <summary>The loss curve of a run trained earlier: the logged window means of metrics.jsonl.</summary>
    static IReadOnlyList<double> LossesFromMetrics(RunDirectory run) =>
        MetricsLine.ReadAll(run).Select(line => line.Loss).OfType<double>().ToList();

    static ArmSummary Summarise(string arm, IReadOnlyList<ArmSeedOutcome> runs)
    {
        Estimate? Proportion(Func<ArmSeedOutcome, ProportionEstimate?> pick)
        {
            var values = runs.Select(pick).ToList();
            return values.All(v => v is not null) && values.Count > 0 ? Estimate.OfProportions(values!) : null;
        }
        Estimate? Value(Func<ArmSeedOutcome, double?> pick, bool nonNegative = true)
        {
            var values = runs.Select(pick).ToList();
            if (values.Count == 0 || values.Any(v => v is null)) return null;
            var numbers = values.Select(v => v!.Value).ToList();
            return nonNegative ? Estimate.OfNonNegative(numbers) : Estimate.OfValues(numbers);
        }
        MetricsReport? Ordinary(ArmSeedOutcome o) => o.Attacks.GetValueOrDefault(AttackKind.BaselineRate.ToName());

        var attacks = runs[0].Attacks.Keys;
        var extraction = attacks.ToDictionary(a => a, a => Proportion(o => o.Attacks.GetValueOrDefault(a)?.Extraction?.Rate)!)
            .Where(kv => kv.Value is not null).ToDictionary(kv => kv.Key, kv => kv.Value);
        return new ArmSummary(arm, extraction,
            Fidelity: Proportion(o => Ordinary(o)?.Fidelity?.Overall),
            Fd: Value(o => Ordinary(o)?.Distribution?.Fid),
            Kid: Value(o => Ordinary(o)?.Distribution?.Kid?.Mean, nonNegative: false), // the unbiased KID estimate can fall below 0
            ResNetFid: Value(o => Ordinary(o)?.ResNetDistribution?.Fid),
            PixelNearCopies: Proportion(o => Ordinary(o)?.PixelMemorisation?.NearCopies),
            TrainSeconds: Estimate.OfNonNegative(runs.Select(o => o.TrainSeconds).ToList()),
            CertificateWorstShare: Value(o => o.CertificateWorstShare),
            InversionGain: ArmComparison.InversionGain(runs),
            Lift: ArmComparison.Lift(runs));
    }

    /// <summary>The concept and the data as the standard arm saw it (other arms drop or re-caption some of it).</summary>
    static ConceptSetup DescribeConcept(ConceptConfig concept, RunConfig probe, ExperimentPaths paths, IReadOnlyList<ArmSeedOutcome> outcomes)
    {
        var data = probe.DataOrDefault;
        var reference = outcomes.FirstOrDefault(o => o.Arm == TrainingArm.Standard.ToName()) ?? outcomes[0];
        var groundTruth = new RunDirectory(Path.Combine(paths.Output, reference.RunDirectory)).GroundTruthPath;
        var records = File.ReadLines(groundTruth).Select(line => JsonDocument.Parse(line).RootElement).ToList();
        return new ConceptSetup(concept.Phrase,
            Kind: concept.KindValue == ConceptKind.Logo ? null : concept.KindValue.ToName(),
            Look: concept.KindValue == ConceptKind.Stripes ? "dark diagonal stripes over the garment (drawn in code)" : concept.Logo ?? "built-in Acme logo (drawn in code)",
            Dataset: data.Source == "imagefolder" ? $"imagefolder {data.Path}" : $"Fashion-MNIST ({data.Split} split)",
            FinetuneImages: records.Count, StampedImages: records.Count(r => r.GetProperty("stamped").GetBoolean()), StampFraction: concept.StampFraction);
    }

    /// <summary>How many weights the projection arms projected (0 when none ran), from the first projected run's certificate.</summary>
    static int ProjectedWeights(ExperimentPaths paths, IReadOnlyList<ArmSeedOutcome> outcomes)
    {
        var certificate = outcomes.Select(o => new RunDirectory(Path.Combine(paths.Output, o.RunDirectory)).CertificatePath).FirstOrDefault(File.Exists);
        return certificate is null ? 0 : ProjectionCertificate.Load(certificate).Weights.Count;
    }

    static AttackSetup DescribeAttacks(AttackSettings attack, IReadOnlyList<string> names) =>
        new(names, attack.ImagesPerPrompt, attack.SamplingSteps, attack.GuidanceScale, attack.Sampler.ToName(),
            attack.InversionOrDefault.Images, attack.InversionOrDefault.Steps);

    static JudgeSetup DescribeJudges(ExperimentPlan plan, EvaluationContext context, Evaluation.Judges.DetectorMaskReport? detectorMasks)
    {
        var detector = context.Detector.Report.HeldOut.FirstOrDefault()?.Metrics;
        return new JudgeSetup(plan.ReferenceImages, plan.ResNetImages, context.Classifier.Id, context.Classifier.Report.TestAccuracy,
                              context.Detector.Id, detector?.Precision ?? double.NaN, detector?.Recall ?? double.NaN,
                              plan.QuickJudges, plan.QualityMeaningful, context.Detector.Report.OffDistribution, detectorMasks);
    }

    static long ModelParameterCount(RunDirectory run) =>
        SafetensorsFile.ReadHeader(run.ModelPath).Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b));
}
