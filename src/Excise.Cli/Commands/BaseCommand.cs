using Excise.Training;
using Spectre.Console;

namespace Excise.Cli.Commands;

/// <summary>
/// excise base pack --run RUN_DIR --command "…" [--out models/base]: ship a trained base (pinned weights, base.json).
/// excise base verify [--dir models/base]: load it, check its pin and its recorded fixed-batch loss.
/// </summary>
static class BaseCommand
{
    public static int Run(string[] args)
    {
        if (args.Length == 0) throw new UsageException("excise base pack|verify: say which.");
        var cl = new CommandLine(args[1..]);
        var shippedDefault = Path.Combine(ProjectFiles.Root, "models", "base");
        switch (args[0])
        {
            case "pack":
            {
                var run = new RunDirectory(cl.Required("run", "the finished base run to ship"));
                var command = cl.Required("command", "the exact command that trained it (recorded in base.json)");
                var outDir = cl.Option("out") ?? shippedDefault;
                cl.EnsureAllUsed();
                var manifest = ShippedBase.Pack(run, outDir, command);
                AnsiConsole.MarkupLine($"Shipped [blue]{Markup.Escape(run.Root)}[/] as [blue]{Markup.Escape(Path.GetFullPath(outDir))}[/]: SHA-256 {manifest.ModelSha256}, " +
                                       $"{manifest.Steps} steps on {manifest.Threads} thread(s), fixed-batch loss {manifest.FixedBatchLoss:R}.");
                return 0;
            }
            case "verify":
            {
                var dir = cl.Option("dir") ?? shippedDefault;
                cl.EnsureAllUsed();
                var (manifest, loss) = ShippedBase.Verify(dir);
                AnsiConsole.MarkupLine($"[green]ok[/] {Markup.Escape(Path.GetFullPath(dir))}: SHA-256 {manifest.ModelSha256} matches its pin; fixed-batch loss {loss:R} " +
                                       $"(recorded {manifest.FixedBatchLoss:R}). Trained by: {Markup.Escape(manifest.Command)} ({manifest.Threads} thread(s)).");
                return 0;
            }
            default:
                throw new UsageException($"excise base: unknown action '{args[0]}' (pack or verify).");
        }
    }
}
