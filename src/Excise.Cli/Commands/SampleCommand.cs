using System.CommandLine;
using Excise.Configuration;
using Excise.Diffusion;
using Excise.Imaging;
using Excise.Training;
using Spectre.Console;

namespace Excise.Cli.Commands;

/// <summary>excise sample: images from a trained run, one grid row per prompt.</summary>
static class SampleCommand
{
    public static Command Create()
    {
        var defaults = new SamplingOptions();
        var run = CliOptions.Text("--run", "A finished training run directory (or models/base).", required: true, helpName: "RUN_DIR");
        var prompts = CliOptions.Repeated("--prompt", "A prompt; repeat for more (one grid row each).", helpName: "TEXT");
        prompts.Required = true;
        var count = CliOptions.Int("-n", "Images per prompt.", 16, min: 1, aliases: ["--n", "--count"]);
        var steps = CliOptions.Int("--steps", "Sampling steps.", defaults.Steps, min: 1);
        var guidance = CliOptions.Double("--guidance", "Classifier-free guidance scale (1 = none).", defaults.GuidanceScale, min: 0);
        var eta = CliOptions.Double("--eta", "DDIM stochasticity (0 = deterministic, 1 = DDPM-like).", defaults.Eta, min: 0, max: 1);
        var seed = CliOptions.Long("--seed", "The noise seed; the same seed gives the same images.", defaults.Seed);
        var sampler = CliOptions.Choice("--sampler", "The sampler.", defaults.Sampler);
        var output = CliOptions.Text("--out", "The PNG grid to write.", required: true, helpName: "GRID.png");
        var outDir = CliOptions.Text("--out-dir", "Also write every image as its own PNG here.", helpName: "DIR");
        var weights = CliOptions.Text("--weights", "Another weights file of the run (default: its model.safetensors).", helpName: "FILE");
        var device = CliOptions.Text("--device", "cpu or cuda (default: the run's config).");
        var command = new Command("sample", "Generate images from a trained run.")
        {
            run, prompts, count, steps, guidance, eta, seed, sampler, output, outDir, weights, device,
        }.WithExamples(
            "excise sample --run models/base --prompt \"a photo of a sneaker\" -n 16 --out grid.png",
            "excise sample --run runs/ft --prompt \"a bag with the Acme logo\" --prompt \"a bag\" --sampler dpm++2m --steps 20 --out grid.png --out-dir imgs/");
        command.SetAction(r => Run(r.GetValue(run)!, r.GetValue(prompts)!, r.GetValue(count),
            new SamplingOptions(r.GetValue(steps), r.GetValue(guidance), r.GetValue(eta), Seed: r.GetValue(seed), Sampler: r.GetChoice(sampler)),
            r.GetValue(output)!, r.GetValue(outDir), r.GetValue(weights), r.GetValue(device)));
        return command;
    }

    static int Run(string runDir, IReadOnlyList<string> prompts, int n, SamplingOptions options, string outPath, string? outDir, string? weights, string? device)
    {
        try { options.Validate(); }
        catch (ArgumentException e) { throw new UsageException(e.Message); }

        var run = new RunDirectory(runDir);
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
