using Excise.Benchmarking;
using Excise.Models;
using Excise.Serialization;
using Excise.Training;
using Spectre.Console;
using static TorchSharp.torch;

namespace Excise.Cli.Commands;

/// <summary>
/// excise bench: training and sampling speed, model FLOPs utilisation, projection overhead, text-encoder throughput,
/// cached-states vs encode-every-batch training loops and memory growth, written as JSON. `excise bench export`
/// writes a model's config, seeded weights and one batch for the PyTorch reference (bench/reference).
/// </summary>
static class BenchCommand
{
    public const string Usage =
        "excise bench [--out FILE.json] [--config base|large|FILE.json ...] [--only s1,s2] [--skip s1,s2] [--steps N] [--warmup N] " +
        "[--batch N] [--threads N] [--trainer-steps N] [--trainer-images N] [--sampling-steps N] [--sampling-calls N] [--rank K] [--seed S] " +
        "[--run RUN_DIR [--solver-images N] [--reference-steps N]] [--only metrics [--metrics-images N]]\n" +
        "excise bench export --config base|large|FILE.json --out DIR [--batch N] [--seed S]";

    public static int Run(string[] args)
    {
        var cl = new CommandLine(args);
        if (cl.Positionals.FirstOrDefault() == "export") return Export(cl);
        if (cl.Positionals.Count > 0) throw new UsageException($"Unknown bench subcommand '{cl.Positionals[0]}'. Usage: {Usage}");

        var configs = cl.All("config");
        var models = (configs.Count > 0 ? configs : ["base", "large"]).Select(Resolve).ToList();
        var solverRun = cl.Option("run");
        // The solvers section samples a trained run, so it runs by default only when one is given; metrics only when named.
        var sections = (solverRun is null ? BenchmarkSettings.SectionsWithoutRun : BenchmarkSettings.SectionsWithRun).ToHashSet();
        if (cl.Option("only") is { } only) sections = Split(only).ToHashSet();
        if (cl.Option("skip") is { } skip) sections.ExceptWith(Split(skip));
        var defaults = new BenchmarkSettings { Models = models };
        var settings = defaults with
        {
            Sections = sections,
            Steps = cl.Int("steps", defaults.Steps),
            WarmupSteps = cl.Int("warmup", defaults.WarmupSteps),
            Batch = cl.Option("batch") is null ? null : cl.Int("batch", 0),
            Threads = cl.Int("threads", 0),
            TrainerSteps = cl.Int("trainer-steps", defaults.TrainerSteps),
            TrainerImages = cl.Int("trainer-images", defaults.TrainerImages),
            SamplingSteps = cl.Int("sampling-steps", defaults.SamplingSteps),
            SamplingCalls = cl.Int("sampling-calls", defaults.SamplingCalls),
            ProjectionRank = cl.Int("rank", defaults.ProjectionRank),
            SolverRun = solverRun,
            SolverImages = cl.Int("solver-images", defaults.SolverImages),
            SolverReferenceSteps = cl.Int("reference-steps", defaults.SolverReferenceSteps),
            MetricsImages = cl.Int("metrics-images", defaults.MetricsImages),
            Seed = cl.Long("seed", 0),
        };
        var outPath = cl.Option("out");
        cl.EnsureAllUsed();
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

    static void PrintProfile(ModelBenchmark model)
    {
        var table = new Table().Title($"{Markup.Escape(model.Name)}: training-mode forward by block (batch {model.Batch})")
            .AddColumns("block", "ms", "share", "GFLOP", "GFLOP/s", "attention FLOPs");
        foreach (var b in model.ForwardProfile)
            table.AddRow(b.Block, $"{b.MedianSeconds * 1e3:F1}", $"{b.ShareOfForward:P1}", $"{b.ForwardGflop:F2}", $"{b.Gflops:F1}", $"{b.AttentionShare:P0}");
        AnsiConsole.Write(table);
    }

    static int Export(CommandLine cl)
    {
        var benchModel = Resolve(cl.Required("config", "the model config to export (base, large or a file)"));
        var (name, config) = (benchModel.Name, benchModel.Load());
        var outDir = cl.Required("out", "the folder to write unet_config.json, model.safetensors and inputs.safetensors into");
        int? batch = cl.Option("batch") is null ? null : cl.Int("batch", 0);
        long seed = cl.Long("seed", 0);
        cl.EnsureAllUsed();

        var unetConfig = config.ResolveUNetConfig();
        Directory.CreateDirectory(outDir);
        manual_seed(seed);
        using var model = new UNet2DConditionModel(unetConfig);
        using var inputs = new SyntheticBatch(unetConfig, batch ?? config.TrainingOrDefault.BatchSize, config.TextOrDefault.MaxLength, seed);
        AtomicFile.WriteAllText(Path.Combine(outDir, "unet_config.json"), unetConfig.ToDiffusersJson());
        ModuleWeights.Save(model, Path.Combine(outDir, "model.safetensors"));
        inputs.Save(Path.Combine(outDir, "inputs.safetensors"));
        AnsiConsole.MarkupLine($"Wrote {Markup.Escape(name)}'s unet_config.json, model.safetensors ({model.ParameterCount:N0} parameters) and inputs.safetensors " +
                               $"(batch {inputs.Batch}) to [blue]{Markup.Escape(Path.GetFullPath(outDir))}[/].");
        return 0;
    }

    static BenchModel Resolve(string nameOrPath)
    {
        var path = Path.GetFullPath(File.Exists(nameOrPath) ? nameOrPath : ProjectFiles.Config(nameOrPath));
        return new BenchModel(RunConfig.Load(path).Name, path);
    }

    static IEnumerable<string> Split(string list) => list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
