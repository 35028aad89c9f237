using System.CommandLine;
using System.Globalization;
using Excise.Configuration;
using Excise.Attacks;
using Excise.Data;
using Excise.Diffusion;
using Excise.Distributed;
using Excise.Experiment;
using Excise.Projection;
using Excise.Reporting;
using Excise.Training;
using Spectre.Console;

namespace Excise.Cli.Commands;

/// <summary>
/// The main job: the whole selective-learning experiment on the embedded default (or the user's concept, logo
/// and imagefolder), every arm against every attack, written up as report.html, results.json and results.md.
/// </summary>
static class DemoCommand
{
    public static Command Create()
    {
        var preset = new Option<string>("--preset")
        {
            Description = "The budget: quick (minutes, smoke-sized), default (≈ 20 min, one seed, the shipped base), full (three seeds, all arms; the published figures).",
            DefaultValueFactory = _ => ExperimentPresets.Default, HelpName = string.Join("|", ExperimentPresets.Names),
        };
        preset.AcceptOnlyFromAmong([.. ExperimentPresets.Names]);
        var output = CliOptions.Text("--out", "The experiment folder (default: runs/demo); re-running the same command there continues where it stopped.", helpName: "DIR");
        var concept = CliOptions.Text("--concept", "The concept's phrase in captions and attacks (default: \"the Acme logo\", or \"the Zebra pattern\" for stripes).", helpName: "TEXT");
        var logo = CliOptions.Text("--logo", "Your logo to stamp instead of the built-in one.", helpName: "FILE.svg|FILE.png");
        var conceptKind = CliOptions.Choice("--concept-kind", "A logo in a corner (a mask can hide it) or stripes over the whole garment (none can).", ConceptKind.Logo);
        var dataset = CliOptions.Text("--dataset", "Your imagefolder (images plus metadata.jsonl with captions) instead of Fashion-MNIST.", helpName: "IMAGEFOLDER");
        var arms = CliOptions.ChoiceList<TrainingArm>("--arms", "The arms to run (default: the preset's).");
        var seeds = CliOptions.OptionalInt("--seeds", "Seeds per arm (default: the preset's; a verdict needs ≥ 3).", min: 1);
        var attacks = CliOptions.ChoiceList<AttackKind>("--attacks", "The attacks (default: all; baseline-rate is required).");
        var steps = CliOptions.OptionalInt("--steps", "Fine-tuning steps per arm (default: the preset's).", min: 1);
        var count = CliOptions.OptionalInt("-n", "Images per attack prompt (default: the preset's).", min: 1);
        count.Aliases.Add("--n");
        var sampler = CliOptions.OptionalChoice<SamplerKind>("--sampler", "The attacks' sampler (default: the preset's).");
        var samplingSteps = CliOptions.OptionalInt("--sampling-steps", "The attacks' sampling steps (default: the preset's).", min: 1);
        var subspaceMode = CliOptions.OptionalChoice<SubspaceMode>("--subspace-mode", "What the projection arms' concept basis spans (default: concept-tokens).");
        var energy = CliOptions.OptionalDouble("--energy", "The basis keeps this share of the concept states' energy (default 0.99).", min: 0, max: 1);
        var rank = CliOptions.OptionalInt("--rank", "The basis keeps exactly this many directions.", min: 1);
        var threads = CliOptions.OptionalInt("--threads", "libtorch threads for the whole experiment (default: one per core).", min: 0);
        var armWorkers = CliOptions.OptionalInt("--arm-workers", "Arms fine-tuned side by side (the figures do not depend on it).", min: 1);
        var overrides = CliOptions.Repeated("--set", "Override a fine-tuning config field for every arm; repeat for more.", helpName: "KEY=VALUE");
        var trainBase = CliOptions.Flag("--train-base", "Train configs/base.json into the cache instead of fine-tuning from the shipped models/base.");
        var baseOverrides = CliOptions.Repeated("--base-set", "Override a base config field (with --train-base).", helpName: "KEY=VALUE");
        var projectionOverrides = CliOptions.Repeated("--projection-set", "Override a config field for the projection arms only.", helpName: "KEY=VALUE");
        var cache = CliOptions.Text("--cache", "Where trained bases are cached (default: runs/cache).", helpName: "DIR");
        var judges = CliOptions.Text("--judges", "The judges' cache (default: runs/judges).", helpName: "DIR");
        var maskThreshold = CliOptions.OptionalDouble("--mask-threshold",
            "detector-masked-loss: the share of the occlusion peak at which a pixel is masked (default 0.3; higher gives smaller, worse masks).", min: 0, max: 1);
        var shares = CliOptions.NumberList("--shares", "Run the experiment at each share of stamped images and chart extraction against share.", "0.01,0.03,0.1,0.3");
        var command = new Command("demo", "The whole experiment: every arm fine-tuned from the base, attacked and judged; writes report.html, results.json, results.md.")
        {
            preset, output, concept, logo, conceptKind, dataset, arms, seeds, attacks, steps, count, sampler, samplingSteps, subspaceMode, energy, rank,
            threads, armWorkers, overrides, trainBase, baseOverrides, projectionOverrides, cache, judges, maskThreshold, shares,
        }.WithExamples(
            "excise demo",
            "excise demo --preset full --out runs/full",
            "excise demo --concept-kind stripes --arms standard,update-projection,filter-images --out runs/stripes",
            "excise demo --shares 0.01,0.03,0.1,0.3 --arms standard,masked-loss",
            "mpirun -np 2 ./excise demo --threads 1   # the arm runs fanned out over 2 ranks (docs/distributed.md)");
        command.SetAction(r =>
        {
            var plan = ExperimentPresets.Get(r.GetValue(preset)!, Path.Combine(ProjectFiles.Root, "configs"))
                .WithConcept(r.GetChoice(conceptKind), r.GetValue(concept));
            if (r.GetValue(logo) is { } logoFile) plan = plan.WithLogo(logoFile);
            if (r.GetValue(dataset) is { } folder) plan = plan.WithImageFolder(folder);
            var finetuneOverrides = plan.FinetuneOverrides.ToList();
            if (r.GetValue(steps) is { } stepCount) finetuneOverrides.Add($"training.steps={stepCount}");
            finetuneOverrides.AddRange(r.GetValue(overrides) ?? []);
            var subspace = plan.Subspace;
            if (r.GetValue(subspaceMode) is { } mode) subspace = subspace with { Mode = mode };
            if (r.GetValue(energy) is { } energyShare) subspace = subspace with { Energy = energyShare };
            if (r.GetValue(rank) is { } rankCount) subspace = subspace with { Rank = rankCount };
            plan = plan with
            {
                BaseOverrides = [.. plan.BaseOverrides, .. r.GetValue(baseOverrides) ?? []],
                FinetuneOverrides = finetuneOverrides,
                Arms = r.GetValue(arms) ?? plan.Arms,
                Attacks = r.GetValue(attacks) ?? plan.Attacks,
                Seeds = r.GetValue(seeds) ?? plan.Seeds,
                Subspace = subspace,
                Attack = plan.Attack with
                {
                    ImagesPerPrompt = r.GetValue(count) ?? plan.Attack.ImagesPerPrompt,
                    Sampler = r.GetValue(sampler) ?? plan.Attack.Sampler,
                    SamplingSteps = r.GetValue(samplingSteps) ?? plan.Attack.SamplingSteps,
                },
                Threads = r.GetValue(threads) ?? plan.Threads,
                ArmWorkers = r.GetValue(armWorkers) ?? plan.ArmWorkers,
                ProjectionOverrides = r.GetValue(projectionOverrides) ?? [],
                ShippedBase = r.GetValue(trainBase) ? null : plan.ShippedBase,
                DetectorMasks = r.GetValue(maskThreshold) is { } cut ? (plan.DetectorMasks ?? new()) with { Threshold = cut } : plan.DetectorMasks,
            };
            var outDir = Path.GetFullPath(r.GetValue(output) ?? Path.Combine(ProjectFiles.RunsRoot, "demo"));
            var paths = new ExperimentPaths(outDir,
                Path.GetFullPath(r.GetValue(cache) ?? Path.Combine(ProjectFiles.RunsRoot, "cache")),
                Path.GetFullPath(r.GetValue(judges) ?? ProjectFiles.JudgeCache));
            var commandLine = "excise demo " + string.Join(' ', r.Tokens.Select(t => Quote(t.Value)).Skip(1));
            return Run(plan, paths, r.GetValue(shares), commandLine.Trim());
        });
        return command;
    }

    static int Run(ExperimentPlan plan, ExperimentPaths paths, IReadOnlyList<double>? shares, string command)
    {
        try
        {
            plan.Validate();
            if (shares is not null) ShareSweep.Validate(shares);
        }
        catch (ArgumentException e) { throw new UsageException(e.Message); }
        // Under mpirun the arm runs are fanned out over the ranks (docs/distributed.md); rank 0 alone prints and reports.
        using var group = ProcessGroup.FromEnvironment();
        return MpiJob.Run(group, () =>
        {
            if (!group.IsRoot)
            {
                if (shares is not null) ShareSweep.Run(plan, paths, shares, command, group: group);
                else ExperimentRunner.Run(plan, paths, command, group: group);
                return 0;
            }
            if (group.Size > 1)
                AnsiConsole.MarkupLine($"Fanned out over {group.Size} ranks (Open MPI), {(plan.Threads == 1 ? "1 thread" : plan.Threads > 1 ? $"{plan.Threads} threads" : "a thread per core")} each" +
                                       (plan.Threads > 0 ? "." : $": give --threads {Math.Max(1, Environment.ProcessorCount / group.Size)} (cores ÷ ranks) so the ranks do not fight over the cores."));
            return shares is not null ? RunSweep(plan, paths, shares, command, group) : RunExperiment(plan, paths, command, group);
        });
    }

    static int RunExperiment(ExperimentPlan plan, ExperimentPaths paths, string command, ProcessGroup group)
    {
        AnsiConsole.MarkupLine($"[bold]Selective-learning experiment[/] ({Markup.Escape(plan.Preset)} preset): {plan.Arms.Count} arms × {plan.Seeds} seed(s), "
                               + $"attacks {Markup.Escape(string.Join(", ", plan.Attacks.Select(EnumNames.ToName)))} → {Markup.Escape(paths.Output)}");
        var results = ProgressDisplay.Run("experiment", 1.0, update =>
            ExperimentRunner.Run(plan, paths, command,
                new SyncProgress<ExperimentProgress>(p => update(p.Done / p.Total,
                    $"{p.Status} · {ProgressDisplay.Duration(p.Elapsed)} elapsed" + (p.Remaining is { } r ? $" · ETA {ProgressDisplay.Duration(r)}" : ""))),
                message => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(message)}[/]"),
                writeReport: finished => ExperimentReport.Write(finished, paths.Output), group: group));

        Print(results, paths.Output);
        return 0;
    }

    /// <summary>The experiment at every share of stamped images (<c>--shares</c>), each in OUT/share-x/, then sweep.md and its charts.</summary>
    static int RunSweep(ExperimentPlan plan, ExperimentPaths paths, IReadOnlyList<double> shares, string command, ProcessGroup group)
    {
        AnsiConsole.MarkupLine($"[bold]Stamped-share sweep[/] ({Markup.Escape(plan.Preset)} preset): {plan.Arms.Count} arms × {plan.Seeds} seed(s) at shares "
                               + $"{Markup.Escape(string.Join(", ", shares.Order().Select(s => s.ToString("P0", CultureInfo.InvariantCulture))))} → {Markup.Escape(paths.Output)}");
        var sweep = ProgressDisplay.Run("share sweep", 1.0, update =>
            ShareSweep.Run(plan, paths, shares, command.Trim(),
                new SyncProgress<ShareSweepProgress>(p => update(p.Fraction,
                    $"share {p.Index + 1}/{p.Shares}: {p.Experiment.Status} · {ProgressDisplay.Duration(p.Experiment.Elapsed)} elapsed")),
                message => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(message)}[/]"),
                writeReport: ExperimentReport.Write, group: group));
        ShareSweepReport.Write(sweep, paths.Output);
        AnsiConsole.MarkupLine($"Done. Sweep: [blue]{Markup.Escape(Path.Combine(paths.Output, ShareSweepReport.Markdown))}[/] and plots/share-sweep-*.png; "
                               + "each share's report.html in its share-* folder.");
        return 0;
    }

    static void Print(ExperimentResults results, string outDir)
    {
        var columns = ResultsTable.Columns(results.Setup.Attacks.Names, results.Setup.ConceptNoun);
        var table = new Table().AddColumn("arm");
        foreach (var c in columns) table.AddColumn(Markup.Escape(c.Header));
        foreach (var arm in results.Summary) table.AddRow(new[] { Markup.Escape(arm.Arm) }.Concat(columns.Select(c => Markup.Escape(c.Cell(arm)))).ToArray());
        AnsiConsole.Write(table);
        foreach (var line in results.Reading) AnsiConsole.MarkupLine($"• {Markup.Escape(line)}");
        var reused = results.Setup.Execution.ReusedArmRuns > 0 ? $" ({results.Setup.Execution.ReusedArmRuns} of {results.Runs.Count} arm runs reused from an earlier run)" : "";
        AnsiConsole.MarkupLine($"Done in {ProgressDisplay.Duration(TimeSpan.FromSeconds(results.ElapsedSeconds))}{reused}. Report: [blue]{Markup.Escape(Path.Combine(outDir, "report.html"))}[/]; figures: results.json, results.md.");
    }

    static string Quote(string arg) => arg.Contains(' ') ? $"\"{arg}\"" : arg;
}
