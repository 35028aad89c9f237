using System.CommandLine;
using Excise.Configuration;
using Excise.Distributed;
using Excise.Training;
using Spectre.Console;

namespace Excise.Cli.Commands;

/// <summary>excise train: a new run from a config, a fine-tune of a trained run, or the continuation of an interrupted one.</summary>
static class TrainCommand
{
    public static Command Create()
    {
        var config = CliOptions.Text("--config", "A JSON run config, e.g. configs/base.json (not with --resume).", helpName: "FILE");
        var output = CliOptions.Text("--out", "The run directory to create (not with --resume).", helpName: "RUN_DIR");
        var resume = CliOptions.Text("--resume", "Continue this run from its latest checkpoint (bit-exact); --set training.steps=N extends a finished one.", helpName: "RUN_DIR");
        var init = CliOptions.Text("--init", "Fine-tune from this trained run or shipped base (the same as --set init=…).", helpName: "BASE_RUN");
        var arm = CliOptions.OptionalChoice<TrainingArm>("--arm", "The selective-learning arm (the same as --set selective.arm=…).");
        var basis = CliOptions.Text("--basis", "The concept basis a projection arm uses, from 'excise concept' (the same as --set selective.basis=…).", helpName: "FILE");
        var pipeline = CliOptions.Text("--pipeline", "Fine-tune this Stable Diffusion pipeline folder (diffusers' layout) on VAE latents (the same as --set pipeline=…; " +
            "without --config, settings for a pipeline fine-tune are the defaults).", helpName: "PIPELINE_DIR");
        var data = CliOptions.Text("--data", "Train on this imagefolder (the same as --set data.source=imagefolder --set data.path=…).", helpName: "IMAGE_FOLDER");
        var concept = CliOptions.Text("--concept", "Pipeline runs: the phrase a projection arm projects away; its basis is built from the pipeline's CLIP encoder (the same as --set selective.concept=…).", helpName: "TEXT");
        var overrides = CliOptions.Repeated("--set", "Override a config field, e.g. --set training.steps=500; repeat for more.", helpName: "KEY=VALUE");
        var command = new Command("train", "Train a text-conditioned UNet, or fine-tune one; writes checkpoints, metrics.jsonl, model.safetensors, preview.png.")
        {
            config, output, resume, init, arm, basis, pipeline, data, concept, overrides,
        }.WithExamples(
            "excise train --pipeline ~/models/sd-1-5 --data my-imagefolder/ --arm update-projection --concept \"the Acme logo\" --out runs/sd-ft",
            "excise train --config configs/base.json --out runs/base",
            "excise train --config configs/smoke.json --out runs/s --set training.steps=200 --set data.limit=2000",
            "excise train --resume runs/base --set training.steps=3000",
            "excise train --config configs/finetune.json --init models/base --arm update-projection --basis concept.safetensors --out runs/ft",
            "mpirun -np 2 ./excise train --config configs/smoke.json --out runs/s --set threads=1   # data-parallel over 2 ranks");
        command.SetAction(r =>
        {
            var sets = (r.GetValue(overrides) ?? []).ToList();
            if (r.GetValue(init) is { } initRun) sets.Add($"init={initRun}");
            if (r.GetValue(arm) is { } armValue) sets.Add($"selective.arm={armValue.ToName()}");
            if (r.GetValue(basis) is { } basisFile) sets.Add($"selective.basis={basisFile}");
            if (r.GetValue(data) is { } folder) sets.InsertRange(0, ["data.source=imagefolder", $"data.path={folder}"]);
            if (r.GetValue(concept) is { } phrase) sets.Add($"selective.concept={phrase}");
            var pipelineDir = r.GetValue(pipeline);
            if (pipelineDir is not null)
            {
                if (r.GetValue(resume) is not null) throw new UsageException("--resume continues a run with its own pipeline; drop --pipeline.");
                // Before the user's --set, which may still override any of it.
                sets.InsertRange(0, PipelineSettings(pipelineDir, withDefaults: r.GetValue(config) is null));
            }
            return Run(r.GetValue(config), r.GetValue(output), r.GetValue(resume), sets, pipelineDir is not null);
        });
        return command;
    }

    /// <summary>
    /// A fine-tune's defaults when --pipeline comes without --config: diffusers' train_text_to_image example (learning
    /// rate 1e-5, no caption dropout, no warmup) with a small batch for a CPU or a single GPU, and a small preview.
    /// </summary>
    static readonly string[] PipelineDefaults =
    [
        "name=sd-finetune", "training.learning_rate=1e-5", "training.batch_size=4", "training.warmup_steps=0", "training.caption_dropout=0",
        "data.center_crop=true", "preview.per_prompt=2", "preview.steps=30", "preview.guidance_scale=7.5",
    ];

    /// <summary>The pipeline and the image size its UNet and VAE train on, with the fine-tune defaults when there is no config file.</summary>
    static IEnumerable<string> PipelineSettings(string pipelineDir, bool withDefaults)
    {
        int pixels;
        try { pixels = Excise.Pipelines.StableDiffusionPipelineFolder.Open(pipelineDir).PixelSize; }
        catch (Exception e) when (e is InvalidDataException or NotSupportedException or DirectoryNotFoundException)
        {
            throw new UsageException($"--pipeline: {e.Message}");
        }
        return (withDefaults ? PipelineDefaults : []).Concat([$"pipeline={pipelineDir}", $"data.image_size={pixels}"]);
    }

    static int Run(string? configPath, string? outDir, string? resumeDir, IReadOnlyList<string> overrides, bool pipelineRun = false)
    {
        if (resumeDir is not null && (configPath is not null || outDir is not null))
            throw new UsageException("--resume continues a run with its own config and directory; give it alone (plus --set to extend it).");
        if (resumeDir is null && ((configPath is null && !pipelineRun) || outDir is null))
            throw new UsageException("Give --config FILE (or --pipeline DIR) and --out RUN_DIR for a new run, or --resume RUN_DIR to continue one.");
        var run = new RunDirectory(resumeDir ?? outDir!);
        if (resumeDir is not null && !File.Exists(run.ConfigPath)) throw new UsageException($"{resumeDir} is not a run directory (no config.json).");
        var config = configPath is null && resumeDir is null
            ? RunConfig.FromSettings(overrides)
            : RunConfig.Load(configPath ?? run.ConfigPath, overrides);

        using var group = ProcessGroup.FromEnvironment();
        return MpiJob.Run(group, () => Train(config, run, resumeDir is not null, group));
    }

    /// <summary>The run on this process; under mpirun only rank 0 prints progress and the result.</summary>
    static int Train(RunConfig config, RunDirectory run, bool resume, ProcessGroup group)
    {
        if (!group.IsRoot)
        {
            TrainingJob.Run(config, run, resume, group: group);
            return 0;
        }
        if (group.Size > 1) AnsiConsole.MarkupLine($"Data-parallel over {group.Size} ranks (Open MPI); each trains 1/{group.Size} of every batch of {config.TrainingOrDefault.BatchSize}.");
        AnsiConsole.MarkupLine($"Training [bold]{Markup.Escape(config.Name)}[/] → {Markup.Escape(run.Root)}");
        var result = ProgressDisplay.Run($"train {config.Name}", config.TrainingOrDefault.Steps, update =>
            TrainingJob.Run(config, run, resume,
                new SyncProgress<TrainingProgress>(p => update(p.Step,
                    $"step {p.Step}/{p.TotalSteps} · loss {p.Loss:F4} · {1 / Math.Max(p.SecondsPerStep, 1e-9):F2} steps/s · ETA {ProgressDisplay.Duration(p.Remaining)}")),
                message => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(message)}[/]"), group: group));
        var s = result.Summary;
        AnsiConsole.MarkupLine($"[green]Done[/]: {s.Steps} steps in {ProgressDisplay.Duration(s.Elapsed)}, final loss {s.FinalLoss:F4} (mean of last 100: {s.MeanLossLast100:F4}), " +
                               $"{s.MedianSecondsPerStep:F3} s/step median, {s.ImagesPerSecond:F1} images/s, peak RSS {s.PeakRssBytes / 1048576.0:F0} MiB.");
        if (group.Size > 1)
            AnsiConsole.MarkupLine($"Gradient allreduce on rank 0: {s.AllreduceTime.TotalSeconds:F2} s in all, {s.AllreduceTime.TotalSeconds / s.Elapsed.TotalSeconds:P1} of the training time " +
                                   "(waiting for the slower rank included).");
        AnsiConsole.MarkupLine($"Run: [blue]{Markup.Escape(run.Root)}[/]" + (result.PreviewPath is { } p ? $"  preview: [blue]{Markup.Escape(p)}[/]" : ""));
        return 0;
    }
}
