using Excise.Training;
using Spectre.Console;

namespace Excise.Cli.Commands;

static class TrainCommand
{
    public static int Run(string[] args)
    {
        var cl = new CommandLine(args);
        var resumeDir = cl.Option("resume");
        var overrides = cl.All("set").ToList();
        if (cl.Option("init") is { } init) overrides.Add($"init={init}");
        if (cl.Option("arm") is { } arm) overrides.Add($"selective.arm={arm}");
        if (cl.Option("basis") is { } basis) overrides.Add($"selective.basis={basis}");
        var configPath = resumeDir is null ? cl.Required("config", "a JSON config, e.g. configs/base.json") : null;
        var run = new RunDirectory(resumeDir ?? cl.Required("out", "the run directory to create"));
        cl.EnsureAllUsed(); // a mistyped option is a usage error whatever else is wrong
        if (resumeDir is not null && !File.Exists(run.ConfigPath)) throw new UsageException($"{resumeDir} is not a run directory (no config.json).");
        var config = RunConfig.Load(configPath ?? run.ConfigPath, overrides);

        var result = ExecuteWithProgress(config, run, resumeDir is not null);
        var s = result.Summary;
        AnsiConsole.MarkupLine($"[green]Done[/]: {s.Steps} steps in {ProgressDisplay.Duration(s.Elapsed)}, final loss {s.FinalLoss:F4} (mean of last 100: {s.MeanLossLast100:F4}), " +
                               $"{s.MedianSecondsPerStep:F3} s/step median, {s.ImagesPerSecond:F1} images/s, peak RSS {s.PeakRssBytes / 1048576.0:F0} MiB.");
        AnsiConsole.MarkupLine($"Run: [blue]{Markup.Escape(run.Root)}[/]" + (result.PreviewPath is { } p ? $"  preview: [blue]{Markup.Escape(p)}[/]" : ""));
        return 0;
    }

    public static TrainingJobResult ExecuteWithProgress(RunConfig config, RunDirectory run, bool resume)
    {
        AnsiConsole.MarkupLine($"Training [bold]{Markup.Escape(config.Name)}[/] → {Markup.Escape(run.Root)}");
        return ProgressDisplay.Run($"train {config.Name}", config.TrainingOrDefault.Steps, update =>
            TrainingJob.Run(config, run, resume,
                new SyncProgress<TrainingProgress>(p => update(p.Step,
                    $"step {p.Step}/{p.TotalSteps} · loss {p.Loss:F4} · {1 / Math.Max(p.SecondsPerStep, 1e-9):F2} steps/s · ETA {ProgressDisplay.Duration(p.Remaining)}")),
                message => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(message)}[/]")));
    }
}
