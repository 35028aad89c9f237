using System.Runtime.InteropServices;
using Excise.Diffusion;
using Excise.Models;
using Excise.Text;
using Excise.Torch;
using Excise.Training;
using static TorchSharp.torch;

namespace Excise.Benchmarking;

/// <summary>A run config to benchmark, by name and file (overrides are applied per section).</summary>
public sealed record BenchModel(string Name, string ConfigPath)
{
    public RunConfig Load(IEnumerable<string>? overrides = null) => RunConfig.Load(ConfigPath, overrides);
}

/// <summary>
/// What to benchmark. Sections: peak (matmul), train (synthetic step per model), profile (forward by block), trainer
/// (the real training loop: first step, step times, memory growth), projection, text, loop (cached states vs encoding
/// every batch), sampling, solvers (sampler accuracy against a many-step reference on a trained run: needs
/// <see cref="SolverRun"/>), metrics (what each evaluation metric costs per <see cref="MetricsImages"/> generated images;
/// asked for by name only, as it times ResNet18 rather than training), full-size (forward and backward of a full-size UNet,
/// Stable Diffusion 1.5's by default, with its peak memory: by name only, as it takes minutes and about 12 GB).
/// </summary>
public sealed record BenchmarkSettings
{
    public static IReadOnlyList<string> AllSections { get; } = ["peak", "train", "profile", "trainer", "projection", "text", "loop", "sampling", "scaling", "solvers", "metrics", "full-size"];

    /// <summary>The models whose <c>model</c> section is benchmarked; the first one also runs every other section.</summary>
    public required IReadOnlyList<BenchModel> Models { get; init; }
    /// <summary>The sections run only when named: metrics and full-size.</summary>
    public static IReadOnlyList<string> SectionsByNameOnly { get; } = ["metrics", "full-size"];
    /// <summary>The sections run by default: every one that needs no trained run (solvers joins them when there is one) and is not by name only.</summary>
    public static IReadOnlyList<string> SectionsWithoutRun { get; } = AllSections.Where(s => s != "solvers" && !SectionsByNameOnly.Contains(s)).ToList();
    /// <summary>The sections run by default when a trained run is given.</summary>
    public static IReadOnlyList<string> SectionsWithRun { get; } = AllSections.Where(s => !SectionsByNameOnly.Contains(s)).ToList();

    public IReadOnlySet<string> Sections { get; init; } = SectionsWithoutRun.ToHashSet();
    public int Threads { get; init; }
    public int? Batch { get; init; }
    public int WarmupSteps { get; init; } = 3;
    public int Steps { get; init; } = 10;
    public int ProfileRepeats { get; init; } = 5;
    public int ProjectionSteps { get; init; } = 5;
    public int ProjectionRank { get; init; } = 27;
    public int TextRepeats { get; init; } = 10;
    public int LoopRounds { get; init; } = 3;
    public int LoopStepsPerRound { get; init; } = 4;
    public int SamplingSteps { get; init; } = 20;
    public int SamplingCalls { get; init; } = 3;
    public int TrainerSteps { get; init; } = 1000;
    public int TrainerImages { get; init; } = 8192;
    /// <summary>A finished training run for the solvers section (solver accuracy means nothing on random weights).</summary>
    public string? SolverRun { get; init; }
    public int SolverImages { get; init; } = 64;
    public int SolverReferenceSteps { get; init; } = 100;
    /// <summary>The excise CLI the scaling section launches (alone and under mpirun); null skips the section, saying so.</summary>
    public string? ScalingExecutable { get; init; }
    /// <summary>The rank counts the scaling section measures, one thread each.</summary>
    public IReadOnlyList<int> ScalingRanks { get; init; } = [1, 2];
    /// <summary>Training steps per rank count in the scaling section (the median step time is reported).</summary>
    public int ScalingSteps { get; init; } = 8;
    public int ScalingImages { get; init; } = 512;
    /// <summary>Generated images the metrics section times each metric on (docs/metrics.md quotes costs per 1,000).</summary>
    public int MetricsImages { get; init; } = 1000;
    /// <summary>The full-size section's UNet: a diffusers config.json (bench/sd15-unet.json, Stable Diffusion 1.5's).</summary>
    public string? FullSizeConfig { get; init; }
    /// <summary>Timed forward+backward steps of the full-size UNet (after one warm-up step); each takes about a minute on 2 CPU cores.</summary>
    public int FullSizeSteps { get; init; } = 2;
    /// <summary>Text tokens per caption for the full-size UNet: CLIP's 77, as Stable Diffusion pads every prompt.</summary>
    public int FullSizeTokens { get; init; } = 77;
    public long Seed { get; init; }

    public BenchmarkSettings Validate()
    {
        if (Models.Count == 0) throw new ArgumentException("Give at least one model config to benchmark.");
        foreach (var s in Sections)
            if (!AllSections.Contains(s)) throw new ArgumentException($"Unknown benchmark section '{s}'; sections are {string.Join(", ", AllSections)}.");
        if (Steps < 1 || WarmupSteps < 0) throw new ArgumentException($"steps must be at least 1 and warm-up non-negative (got {Steps}, {WarmupSteps}).");
        if (Batch is < 1) throw new ArgumentException($"batch must be at least 1 (got {Batch}).");
        if (Sections.Contains("trainer") && TrainerSteps < 1) throw new ArgumentException($"trainer-steps must be at least 1 (got {TrainerSteps}).");
        if (Sections.Contains("trainer") && TrainerImages < 1) throw new ArgumentException($"trainer-images must be at least 1 (got {TrainerImages}).");
        if (Sections.Contains("scaling") && (ScalingSteps < 1 || ScalingImages < 1 || ScalingRanks.Count == 0 || ScalingRanks.Any(n => n < 1)))
            throw new ArgumentException($"scaling needs at least one step, one image and rank counts ≥ 1 (got {ScalingSteps} steps, {ScalingImages} images, ranks {string.Join(",", ScalingRanks)}).");
        if (Sections.Contains("full-size") && (FullSizeConfig is null || !File.Exists(FullSizeConfig)))
            throw new ArgumentException($"The full-size section needs a UNet config.json; none at '{FullSizeConfig}'.");
        if (Sections.Contains("full-size") && (FullSizeSteps < 1 || FullSizeTokens < 1))
            throw new ArgumentException($"full-size-steps and the token count must be at least 1 (got {FullSizeSteps}, {FullSizeTokens}).");
        if (Sections.Contains("metrics") && MetricsImages < 2) throw new ArgumentException($"metrics-images must be at least 2 (got {MetricsImages}).");
        if (Sections.Contains("solvers"))
        {
            if (SolverRun is null) throw new ArgumentException("The solvers section needs a trained run to sample: --run RUN_DIR.");
            if (!Directory.Exists(SolverRun)) throw new ArgumentException($"--run: no run directory at {SolverRun}.");
            if (SolverImages < 1) throw new ArgumentException($"solver-images must be at least 1 (got {SolverImages}).");
            if (SolverReferenceSteps <= SolverAccuracy.Candidates.Max(c => c.Steps))
                throw new ArgumentException($"reference-steps must exceed every candidate's steps ({SolverAccuracy.Candidates.Max(c => c.Steps)}); got {SolverReferenceSteps}.");
        }
        return this;
    }
}

/// <summary>Runs the benchmark sections in order, reporting each measurement as it lands.</summary>
public static class BenchmarkRunner
{
    public static BenchmarkReport Run(BenchmarkSettings settings, Action<string>? log = null)
    {
        settings.Validate();
        log ??= _ => { };
        var primary = settings.Models[0].Load();
        TorchRuntime.ConfigureThreads(settings.Threads > 0 ? settings.Threads : primary.Threads);
        bool Has(string section) => settings.Sections.Contains(section);

        var machine = new MachineInfo(RuntimeInformation.OSDescription, Environment.ProcessorCount, get_num_threads(),
            typeof(TorchSharp.torch).Assembly.GetName().Version?.ToString() ?? "?", Environment.Version.ToString(), ProcessorName());
        log($"{machine.Processor}, {machine.LogicalCores} logical cores, {machine.TorchThreads} torch threads.");

        MatmulPeakResult? peak = null;
        if (Has("peak"))
        {
            peak = MatmulPeak.Measure();
            log($"float32 matmul peak ({peak.Size}²): {peak.Gflops:F1} GFLOP/s (median of {peak.Time.Count}).");
        }

        var models = new List<ModelBenchmark>();
        if (Has("train") || Has("profile"))
            foreach (var benchModel in settings.Models)
            {
                var model = MeasureModel(benchModel.Name, benchModel.Load(), settings, peak, Has("profile"));
                models.Add(model);
                log($"{model.Name}: {model.Step.MedianSeconds:F3} s/step (min {model.Step.MinSeconds:F3}, max {model.Step.MaxSeconds:F3}; " +
                    $"forward {model.Forward.MedianSeconds:F3}, backward {model.Backward.MedianSeconds:F3}, optimizer {model.Optimizer.MedianSeconds:F3}), " +
                    $"{model.ImagesPerSecond:F1} images/s, first step {model.FirstStepSeconds:F2} s, " +
                    $"{model.AchievedGflops:F1} GFLOP/s" + (peak is null ? "" : $" = {model.ModelFlopsUtilisation:P1} of peak") + ".");
            }

        var unetConfig = primary.ResolveUNetConfig();
        int batchSize = settings.Batch ?? primary.TrainingOrDefault.BatchSize;
        int tokens = primary.TextOrDefault.MaxLength;

        IReadOnlyList<ProjectionOverhead> projection = [];
        if (Has("projection"))
        {
            using var batch = new SyntheticBatch(unetConfig, batchSize, tokens, settings.Seed);
            projection = ProjectionBenchmark.Measure(unetConfig, batch, settings.ProjectionRank, settings.ProjectionSteps, settings.Seed);
            foreach (var p in projection)
                log($"projection {p.Mode}{(p.Lora ? " (LoRA)" : "")}: {p.ProjectionSecondsPerStep * 1e3:F2} ms/step on {p.Weights} weights, rank {p.Rank} = {p.ShareOfStep:P3} of a step.");
        }

        TextEncodingResult? text = null;
        TrainingLoopComparison? loop = null;
        if (Has("text") || Has("loop"))
        {
            using var encoder = MiniLmTextEncoder.Create(tokens);
            if (Has("text"))
            {
                text = TextEncodingBenchmark.Measure(encoder, batchSize, settings.TextRepeats);
                log($"text encoder: {text.CaptionsPerSecond:F0} captions/s ({text.Batch.MedianSeconds * 1e3:F0} ms per batch of {batchSize}).");
            }
            if (Has("loop"))
            {
                using var batch = new SyntheticBatch(unetConfig, batchSize, tokens, settings.Seed);
                manual_seed(settings.Seed);
                using var model = new UNet2DConditionModel(unetConfig);
                using var steps = new TrainingStepLoop(model, batch);
                for (int i = 0; i < settings.WarmupSteps; i++) steps.Step();
                loop = TextEncodingBenchmark.CompareLoops(steps, batch, encoder, settings.LoopRounds, settings.LoopStepsPerRound);
                log($"training loop: cached text states {loop.CachedStates.MedianSeconds:F3} s/step, encoding every batch {loop.EncodeEveryBatch.MedianSeconds:F3} s/step: {loop.Speedup:F2}× faster.");
            }
        }

        SamplingBenchmarkResult? sampling = null;
        if (Has("sampling"))
        {
            using var batch = new SyntheticBatch(unetConfig, batchSize, tokens, settings.Seed);
            manual_seed(settings.Seed);
            using var model = new UNet2DConditionModel(unetConfig);
            sampling = SamplingBenchmark.Measure(model, new NoiseSchedule(primary.DiffusionOrDefault), batch, settings.SamplingSteps, settings.SamplingCalls);
            log($"sampling ({sampling.Steps} DDIM steps, guidance {sampling.GuidanceScale}): {sampling.ImagesPerSecond:F2} images/s; " +
                $"two guidance forwards take {sampling.SeparateOverBatched:F2}× one batched forward; " +
                $"RSS {sampling.ResidentAfterFirstCallMegabytes:F0} → {sampling.ResidentAfterLastCallMegabytes:F0} MB over {settings.SamplingCalls} calls.");
        }

        TrainerBenchmark? trainer = null;
        if (Has("trainer"))
        {
            trainer = TrainerBenchmark.Measure(settings.Models[0], settings.TrainerSteps, settings.TrainerImages, get_num_threads(), log);
            log($"trainer ({trainer.Images} images): setup {trainer.SetupSeconds:F1} s, first step {trainer.FirstStepSeconds:F2} s, " +
                $"{trainer.Step.MedianSeconds:F3} s/step (min {trainer.Step.MinSeconds:F3}, max {trainer.Step.MaxSeconds:F3}), {trainer.ImagesPerSecond:F1} images/s; " +
                $"RSS {trainer.ResidentAtStep100Megabytes:F0} MB at step {TrainerBenchmark.MemoryBaselineStep}, {trainer.ResidentAtEndMegabytes:F0} MB at step {trainer.Steps} " +
                $"({trainer.GrowthMegabytes:+0;-0} MB), peak {trainer.PeakResidentMegabytes:F0} MB.");
        }

        ScalingBenchmark? scaling = null;
        if (Has("scaling"))
        {
            scaling = ScalingBenchmark.Measure(settings.Models[0], settings.ScalingExecutable, settings.ScalingRanks, settings.ScalingSteps, settings.ScalingImages, log);
            if (scaling.Speedup is { } speedup)
                log($"scaling: {scaling.Points[^1].Ranks} ranks train {speedup:F2}× the images/s of one (load average {scaling.LoadAverage:F1} before; " +
                    $"each allreduce sums {scaling.GradientMegabytes:F1} MB).");
        }

        SolverAccuracyResult? solvers = null;
        if (Has("solvers"))
            solvers = SolverAccuracy.Measure(settings.SolverRun!, settings.SolverImages, settings.SolverReferenceSteps, guidanceScale: 3.0, settings.Seed, log);

        MetricsCostResult? metrics = null;
        if (Has("metrics"))
            metrics = MetricsCostBenchmark.Measure(settings.MetricsImages, settings.Seed, log);

        FullSizeUNetBenchmark? fullSize = null, fullSizeCheckpointed = null;
        if (Has("full-size"))
        {
            // Checkpointed first: memory the plain run frees and the allocator keeps would hide the smaller run's growth.
            fullSizeCheckpointed = FullSizeUNetBenchmark.Measure(settings.FullSizeConfig!, settings.Batch ?? 1, settings.FullSizeTokens, warmupSteps: 1,
                settings.FullSizeSteps, settings.Seed, TorchRuntime.ParseDevice(primary.Device), gradientCheckpointing: true, log);
            fullSize = FullSizeUNetBenchmark.Measure(settings.FullSizeConfig!, settings.Batch ?? 1, settings.FullSizeTokens, warmupSteps: 1, settings.FullSizeSteps,
                settings.Seed, TorchRuntime.ParseDevice(primary.Device), gradientCheckpointing: false, log);
            foreach (var measured in new[] { fullSize, fullSizeCheckpointed })
                log($"full-size UNet{(measured.GradientCheckpointing ? " with gradient checkpointing" : "")}: {measured.Step.MedianSeconds:F1} s per forward+backward " +
                    $"(forward {measured.Forward.MedianSeconds:F1}, backward {measured.Backward.MedianSeconds:F1}), " +
                    $"{measured.TrainingGflopPerStep / measured.Step.MedianSeconds:F1} GFLOP/s; peak RSS {measured.PeakResidentMegabytes / 1024:F1} GiB " +
                    $"({measured.ModelPeakMegabytes / 1024:F1} GiB over the process's {measured.BaselineResidentMegabytes / 1024:F1} GiB{(measured.PeakWasReset ? "" : "; lifetime peak, not reset")}); " +
                    $"a full fine-tune adds {measured.OptimizerAndEmaMegabytes / 1024:F1} GiB of AdamW moments and EMA: about {measured.FineTuneEstimateMegabytes / 1024:F1} GiB.");
            log($"gradient checkpointing: {fullSizeCheckpointed.Step.MedianSeconds / fullSize.Step.MedianSeconds:F2}× the time per step, " +
                $"{fullSizeCheckpointed.ModelPeakMegabytes / fullSize.ModelPeakMegabytes:F2}× the model's peak memory.");
        }

        return new BenchmarkReport(DateTimeOffset.UtcNow, machine, peak, models, trainer, projection, text, loop, sampling, solvers, metrics, scaling, fullSize, fullSizeCheckpointed);
    }

    static ModelBenchmark MeasureModel(string name, RunConfig config, BenchmarkSettings settings, MatmulPeakResult? peak, bool profile)
    {
        var unetConfig = config.ResolveUNetConfig();
        int batchSize = settings.Batch ?? config.TrainingOrDefault.BatchSize;
        int tokens = config.TextOrDefault.MaxLength;
        using var batch = new SyntheticBatch(unetConfig, batchSize, tokens, settings.Seed);
        manual_seed(settings.Seed);
        using var model = new UNet2DConditionModel(unetConfig);
        using var loop = new TrainingStepLoop(model, batch);

        var first = loop.Step();
        for (int i = 1; i < settings.WarmupSteps; i++) loop.Step();
        var phases = Enumerable.Range(0, settings.Steps).Select(_ => loop.Step()).ToList();
        var step = TimingSummary.Of(phases.Select(p => p.Total).ToList());

        double stepFlops = ModelFlops.ForwardTotal(unetConfig, batchSize, tokens) * ModelFlops.TrainingStepMultiplier;
        double achieved = stepFlops / step.MedianSeconds / 1e9;
        var blocks = profile ? ForwardProfile.Measure(model, batch, settings.ProfileRepeats) : [];
        return new ModelBenchmark(name, model.ParameterCount, batchSize, tokens, first.Total, step,
            TimingSummary.Of(phases.Select(p => p.Forward).ToList()), TimingSummary.Of(phases.Select(p => p.Backward).ToList()),
            TimingSummary.Of(phases.Select(p => p.Optimizer).ToList()), batchSize / step.MedianSeconds, stepFlops / 1e9, achieved,
            peak is null ? double.NaN : achieved / peak.Gflops, blocks, phases[^1].Loss);
    }

    static string ProcessorName()
    {
        const string cpuinfo = "/proc/cpuinfo";
        if (!File.Exists(cpuinfo)) return RuntimeInformation.ProcessArchitecture.ToString();
        var line = File.ReadLines(cpuinfo).FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
        return line?.Split(':', 2)[1].Trim() ?? RuntimeInformation.ProcessArchitecture.ToString();
    }
}
