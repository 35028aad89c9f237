using Excise.Data;
using Excise.Training;
using Spectre.Console;

namespace Excise.Cli.Commands;

static class DatasetCommand
{
    public static int Run(string[] args)
    {
        if (args.Length == 0 || args[0] != "export") throw new UsageException("Usage: excise dataset export --config FILE --out DIR [--set k=v ...]");
        var cl = new CommandLine(args[1..]);
        var configPath = cl.Required("config", "the training config whose data to export");
        var overrides = cl.All("set");
        var outDir = cl.Required("out", "the imagefolder directory to write");
        bool heldOut = cl.Flag("held-out");
        cl.EnsureAllUsed(); // a mistyped option is a usage error whatever else is wrong
        var config = RunConfig.Load(configPath, overrides);

        var dataset = ConceptDatasetBuilder.Build(config.DataOrDefault.ToRecipe());
        int size = config.DataOrDefault.ImageSize;
        var fitted = dataset.Train.Select(e => e with { Image = e.Image.FitTo(size, e.Image.Channels) }).ToList();
        ImageFolderDataset.Write(outDir, fitted);
        GroundTruthExport.WriteCsv(Path.Combine(outDir, "ground_truth.csv"), fitted);
        if (heldOut && dataset.HeldOutStamped.Count > 0)
        {
            var held = Path.Combine(outDir, "held_out_stamped");
            ImageFolderDataset.Write(held, dataset.HeldOutStamped);
        }
        AnsiConsole.MarkupLine($"Wrote {fitted.Count} images ({dataset.StampedCount} stamped, {dataset.MentionCount} captions naming the concept) to [blue]{Markup.Escape(Path.GetFullPath(outDir))}[/]");
        return 0;
    }
}
