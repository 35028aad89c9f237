using System.CommandLine;
using Excise.Benchmarking;
using Excise.Serialization;
using Excise.Training;
using Spectre.Console;

namespace Excise.Cli.Commands;

/// <summary>
/// excise bench: training and sampling speed, model FLOPs utilisation, projection overhead, text-encoder throughput,
/// cached-states vs encode-every-batch training loops and memory growth, written as JSON. `excise bench export`
/// writes a model's config, seeded weights and one batch for the PyTorch reference (bench/reference).
/// </summary>
static class BenchCommand
{
    public static Command Create()
    {
        var defaults = new BenchmarkSettings { Models = [] };
        var configs = CliOptions.Repeated("--config", "A model to measure: base, large or a config file; repeat for more (default: base and large).", helpName: "base|large|FILE");
        var only = CliOptions.WordList("--only", $"Run only these sections: {string.Join(", ", BenchmarkSettings.AllSections)}.");
        var skip = CliOptions.WordList("--skip", "Skip these sections.");
        var steps = CliOptions.Int("--steps", "Timed steps per measurement.", defaults.Steps, min: 1);
        var warmup = CliOptions.Int("--warmup", "Untimed steps first.", defaults.WarmupSteps, min: 0);
        var batch = CliOptions.OptionalInt("--batch", "Batch size (default: each config's).", min: 1);
        var threads = CliOptions.Threads();
        var trainerSteps = CliOptions.Int("--trainer-steps", "Steps of the real training loop.", defaults.TrainerSteps, min: 1);
        var trainerImages = CliOptions.Int("--trainer-images", "Images the training loop draws from.", defaults.TrainerImages, min: 1);
        var samplingSteps = CliOptions.Int("--sampling-steps", "Steps per sampling call.", defaults.SamplingSteps, min: 1);
        var samplingCalls = CliOptions.Int("--sampling-calls", "Timed sampling calls.", defaults.SamplingCalls, min: 1);
        var rank = CliOptions.Int("--rank", "The concept basis rank the projection section uses.", defaults.ProjectionRank, min: 1);
        var run = CliOptions.Text("--run", "A trained run: adds the solvers section (each sampler's accuracy on it).", helpName: "RUN_DIR");
        var solverImages = CliOptions.Int("--solver-images", "Images per sampler in the solvers section.", defaults.SolverImages, min: 1);
        var referenceSteps = CliOptions.Int("--reference-steps", "The many-step reference the solvers are compared with.", defaults.SolverReferenceSteps, min: 1);
        var metricsImages = CliOptions.Int("--metrics-images", "Images per side in the metrics section (--only metrics).", defaults.MetricsImages, min: 2);
        var scalingSteps = CliOptions.Int("--scaling-steps", "Training steps per rank count in the scaling section (1 and 2 ranks, one thread each).", defaults.ScalingSteps, min: 1);
        var fullSizeConfig = CliOptions.Text("--full-size-config", "The full-size section's UNet config.json (default: Stable Diffusion 1.5's, bench/sd15-unet.json).", helpName: "FILE");
        var fullSizeSteps = CliOptions.Int("--full-size-steps", "Timed forward+backward steps of the full-size UNet, after one warm-up.", defaults.FullSizeSteps, min: 1);
        var seed = CliOptions.Long("--seed", "The seed of weights and batches.", defaults.Seed);
        var output = CliOptions.Text("--out", "Write the report as JSON here.", helpName: "FILE.json");
        var command = new Command("bench", "Training and sampling speed, FLOPs utilisation, projection overhead, text encoding, memory growth (docs/performance.md).")
        {
            configs, only, skip, steps, warmup, batch, threads, trainerSteps, trainerImages, samplingSteps, samplingCalls, rank, run, solverImages, referenceSteps,
            metricsImages, scalingSteps, fullSizeConfig, fullSizeSteps, seed, output, CreateExport(),
        }.WithExamples(
            "excise bench --out bench.json",
            "excise bench --config base --only train,profile --threads 1",
            "excise bench --run models/base --only solvers",
            "excise bench --only metrics",
            "excise bench --config base --only full-size   # Stable Diffusion 1.5's UNet at 64×64 latents: s/step and peak memory",
            "excise bench --config base --only scaling   # 1 and 2 ranks under mpirun, the allreduce's share");
        command.SetAction(r =>
        {
            var solverRun = r.GetValue(run);
            // The solvers section samples a trained run, so it runs by default only when one is given; metrics only when named.
            var sections = (r.GetValue(only) ?? (solverRun is null ? BenchmarkSettings.SectionsWithoutRun : BenchmarkSettings.SectionsWithRun)).ToHashSet();
            sections.ExceptWith(r.GetValue(skip) ?? []);
            var models = r.GetValue(configs) is { Length: > 0 } names ? names : ["base", "large"];
            var settings = defaults with
            {
                Models = models.Select(Resolve).ToList(),
                Sections = sections,
                Steps = r.GetValue(steps),
                WarmupSteps = r.GetValue(warmup),
                Batch = r.GetValue(batch),
                Threads = r.GetValue(threads),
                TrainerSteps = r.GetValue(trainerSteps),
                TrainerImages = r.GetValue(trainerImages),
                SamplingSteps = r.GetValue(samplingSteps),
                SamplingCalls = r.GetValue(samplingCalls),
                ProjectionRank = r.GetValue(rank),
                SolverRun = solverRun,
                SolverImages = r.GetValue(solverImages),
                SolverReferenceSteps = r.GetValue(referenceSteps),
                MetricsImages = r.GetValue(metricsImages),
                ScalingSteps = r.GetValue(scalingSteps),
                // The scaling section launches this CLI again, alone and under mpirun (MPI starts once per process).
                ScalingExecutable = ThisExecutable(),
                FullSizeConfig = Path.GetFullPath(r.GetValue(fullSizeConfig) ?? Path.Combine(ProjectFiles.Root, "bench", "sd15-unet.json")),
                FullSizeSteps = r.GetValue(fullSizeSteps),
                Seed = r.GetValue(seed),
            };
            return Run(settings, r.GetValue(output));
        });
        return command;
    }

    static int Run(BenchmarkSettings settings, string? outPath)
    {
        try { settings.Validate(); }
        catch (ArgumentException e) { throw new UsageException(e.Message); }

        var report = BenchmarkRunner.Run(settings, line => AnsiConsole.MarkupLine(Markup.Escape(line)));
        foreach (var model in report.Models.Where(m => m.ForwardProfile.Count > 0)) PrintProfile(model);
        if (outPath is not null)
        {
            AtomicFile.WriteAllText(outPath, report.ToJson());
            AnsiConsole.MarkupLine($"Wrote [blue]{Markup.Escape(Path.GetFullPath(outPath))}[/].");
        }
        return 0;
    }

    /// <summary>This CLI's native launcher (also when started as <c>dotnet Excise.Cli.dll</c>), or null when it is missing.</summary>
    static string? ThisExecutable()
    {
        var launcher = Path.Combine(AppContext.BaseDirectory, OperatingSystem.IsWindows() ? "Excise.Cli.exe" : "Excise.Cli");
        return File.Exists(launcher) ? launcher : null;
    }

    static void PrintProfile(ModelBenchmark model)
    {
        var table = new Table().Title($"{Markup.Escape(model.Name)}: training-mode forward by block (batch {model.Batch})")
            .AddColumns("block", "ms", "share", "GFLOP", "GFLOP/s", "attention FLOPs");
        foreach (var b in model.ForwardProfile)
            table.AddRow(b.Block, $"{b.MedianSeconds * 1e3:F1}", $"{b.ShareOfForward:P1}", $"{b.ForwardGflop:F2}", $"{b.Gflops:F1}", $"{b.AttentionShare:P0}");
        AnsiConsole.Write(table);
    }

    static Command CreateExport()
    {
        var config = CliOptions.Text("--config", "The model config to export: base, large or a file.", required: true, helpName: "base|large|FILE");
        var output = CliOptions.Text("--out", "The folder to write unet_config.json, model.safetensors and inputs.safetensors into.", required: true, helpName: "DIR");
        var batch = CliOptions.OptionalInt("--batch", "The batch's size (default: the config's).", min: 1);
        var seed = CliOptions.Long("--seed", "The seed of weights and batch.", 0);
        var export = new Command("export", "Write a model's config, seeded weights and one batch for the PyTorch reference in bench/reference.")
        {
            config, output, batch, seed,
        }.WithExamples("excise bench export --config base --out bench/reference/base");
        export.SetAction(r =>
        {
            var outDir = r.GetValue(output)!;
            var result = ReferenceExport.Write(Resolve(r.GetValue(config)!), outDir, r.GetValue(batch), r.GetValue(seed));
            AnsiConsole.MarkupLine($"Wrote {Markup.Escape(result.Name)}'s unet_config.json, model.safetensors ({result.Parameters:N0} parameters) and inputs.safetensors " +
                                   $"(batch {result.Batch}) to [blue]{Markup.Escape(Path.GetFullPath(outDir))}[/].");
            return 0;
        });
        return export;
    }

    static BenchModel Resolve(string nameOrPath)
    {
        var path = Path.GetFullPath(File.Exists(nameOrPath) ? nameOrPath : ProjectFiles.Config(nameOrPath));
        return new BenchModel(RunConfig.Load(path).Name, path);
    }
}
