using System.CommandLine;
using Excise.Training;
using Spectre.Console;

namespace Excise.Cli.Commands;

/// <summary>excise base pack: ship a trained base (pinned weights, base.json); excise base verify: load it and check it.</summary>
static class BaseCommand
{
    static string ShippedDefault => Path.Combine(ProjectFiles.Root, "models", "base");

    public static Command Create()
    {
        var run = CliOptions.Text("--run", "The finished base run to ship.", required: true, helpName: "RUN_DIR");
        var trainedBy = CliOptions.Text("--command", "The exact command that trained it (recorded in base.json).", required: true, helpName: "TEXT");
        var output = CliOptions.Text("--out", "Where to write the shipped base (default: the repository's models/base).", helpName: "DIR");
        var pack = new Command("pack", "Ship a trained base with the project: pinned weights (SHA-256 checked on every load) and base.json.")
        {
            run, trainedBy, output,
        }.WithExamples("excise base pack --run runs/base-4500 --command \"./excise train --config configs/base.json --out runs/base-4500 --set threads=2\"");
        pack.SetAction(r =>
        {
            var source = new RunDirectory(r.GetValue(run)!);
            var outDir = r.GetValue(output) ?? ShippedDefault;
            var manifest = ShippedBase.Pack(source, outDir, r.GetValue(trainedBy)!);
            AnsiConsole.MarkupLine($"Shipped [blue]{Markup.Escape(source.Root)}[/] as [blue]{Markup.Escape(Path.GetFullPath(outDir))}[/]: SHA-256 {manifest.ModelSha256}, " +
                                   $"{manifest.Steps} steps on {manifest.Threads} thread(s), fixed-batch loss {manifest.FixedBatchLoss:R}.");
            return 0;
        });

        var dir = CliOptions.Text("--dir", "The shipped base to check (default: the repository's models/base).", helpName: "DIR");
        var verify = new Command("verify", "Load the shipped base: check its pin and reproduce its recorded fixed-batch loss.") { dir }
            .WithExamples("excise base verify");
        verify.SetAction(r =>
        {
            var folder = r.GetValue(dir) ?? ShippedDefault;
            var (manifest, loss) = ShippedBase.Verify(folder);
            AnsiConsole.MarkupLine($"[green]ok[/] {Markup.Escape(Path.GetFullPath(folder))}: SHA-256 {manifest.ModelSha256} matches its pin; fixed-batch loss {loss:R} " +
                                   $"(recorded {manifest.FixedBatchLoss:R}). Trained by: {Markup.Escape(manifest.Command)} ({manifest.Threads} thread(s)).");
            return 0;
        });
        return new Command("base", "The base model shipped with the project.") { pack, verify };
    }
}
