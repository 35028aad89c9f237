using Excise.Data;
using Excise.Diffusion;
using Excise.Imaging;
using Excise.Training;
using Spectre.Console;

namespace Excise.Cli.Commands;

/// <summary>
/// The main job. Until the selective-learning experiment lands, it trains the <c>base</c> model on clean
/// Fashion-MNIST (cached by config hash, resumed if interrupted) and samples a grid per class prompt.
/// </summary>
static class DemoCommand
{
    public static int Run(string[] args)
    {
        var cl = new CommandLine(args);
        var configPath = cl.Option("config") ?? ProjectFiles.Config("base");
        var overrides = cl.All("set").ToList();
        if (cl.Option("steps") is { } steps) overrides.Add($"training.steps={steps}");
        var outDir = Path.GetFullPath(cl.Option("out") ?? Path.Combine(ProjectFiles.RunsRoot, "demo"));
        var cacheRoot = Path.GetFullPath(cl.Option("cache") ?? Path.Combine(ProjectFiles.RunsRoot, "cache"));
        cl.EnsureAllUsed();

        var config = RunConfig.Load(configPath, overrides);
        var run = new RunDirectory(Path.Combine(cacheRoot, $"{config.Name}-{config.Hash(includeStepBudget: true)}"));
        if (File.Exists(run.ModelPath))
            AnsiConsole.MarkupLine($"Reusing the cached base model [blue]{Markup.Escape(run.Root)}[/]");
        else
        {
            bool resume = new CheckpointStore(run.CheckpointsDir).Latest() is not null;
            TrainCommand.ExecuteWithProgress(config, run, resume);
        }

        Directory.CreateDirectory(outDir);
        using var pipeline = TextToImagePipeline.Open(run);
        var prompts = FashionMnistClasses.CaptionNouns.Select(noun => Articles.Fix($"a photo of a {noun}")).ToList();
        var preview = config.PreviewOrDefault;
        var grid = ProgressDisplay.Run("sample", 1, update =>
        {
            update(0, $"{prompts.Count} prompts × {preview.PerPrompt}");
            return pipeline.GenerateGrid(prompts, preview.PerPrompt, new SamplingOptions(preview.Steps, preview.GuidanceScale, Seed: preview.Seed));
        });
        var gridPath = Path.Combine(outDir, "samples.png");
        PngIO.Save(grid, gridPath);
        File.Copy(run.SummaryPath, Path.Combine(outDir, "base-summary.json"), overwrite: true);

        var table = new Table().AddColumn("row").AddColumn("prompt");
        for (int i = 0; i < prompts.Count; i++) table.AddRow((i + 1).ToString(), Markup.Escape(prompts[i]));
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine($"Samples: [blue]{Markup.Escape(gridPath)}[/]  (model: {Markup.Escape(run.Root)})");
        return 0;
    }
}
