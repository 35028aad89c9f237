using Excise.Configuration;
using Excise.Data;
using Excise.Diffusion;
using Excise.Imaging;
using Excise.Training;
using Spectre.Console;

namespace Excise.Cli.Commands;

static class SampleCommand
{
    public static int Run(string[] args)
    {
        var cl = new CommandLine(args);
        var run = new RunDirectory(cl.Required("run", "a finished training run directory"));
        var prompts = cl.All("prompt");
        if (prompts.Count == 0) throw new UsageException("Give at least one --prompt \"...\".");
        int n = cl.Int("n", 16, "count");
        var options = new SamplingOptions(cl.Int("steps", 50), cl.Double("guidance", 3.0, min: 0), cl.Double("eta", 0.0, min: 0, max: 1), Seed: cl.Long("seed", 0),
                                          Sampler: AttackCommand.ParseSampler(cl.Option("sampler") ?? "ddim"));
        var outPath = cl.Required("out", "the PNG grid to write");
        var outDir = cl.Option("out-dir");
        var weights = cl.Option("weights");
        var device = cl.Option("device");
        cl.EnsureAllUsed();
        if (n < 1) throw new UsageException("-n must be at least 1.");
        try { options.Validate(); }
        catch (ArgumentException e) { throw new UsageException(e.Message); }

        using var pipeline = run.OpenPipeline(weights, device);
        var rows = ProgressDisplay.Run("sample", prompts.Count, update =>
        {
            update(0, $"\"{prompts[0]}\"");
            return pipeline.GenerateForEachPrompt(prompts, n, options, finished => update(finished, finished < prompts.Count ? $"\"{prompts[finished]}\"" : "done"));
        });
        PngIO.Save(TextToImagePipeline.PromptGrid(rows), outPath);
        if (outDir is not null)
        {
            Directory.CreateDirectory(outDir);
            for (int p = 0; p < rows.Count; p++)
                for (int i = 0; i < rows[p].Length; i++)
                    PngIO.Save(rows[p][i], Path.Combine(outDir, $"p{p:D2}-{i:D3}.png"));
        }
        AnsiConsole.MarkupLine($"Wrote [blue]{Markup.Escape(Path.GetFullPath(outPath))}[/] ({prompts.Count * n} images, {options.Steps} {options.Sampler.ToName()} steps, guidance {options.GuidanceScale}, seed {options.Seed})"
                               + (outDir is null ? "" : $" and single images in [blue]{Markup.Escape(outDir)}[/]"));
        return 0;
    }
}
