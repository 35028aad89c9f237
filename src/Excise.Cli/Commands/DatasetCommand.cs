using System.CommandLine;
using Excise.Data;
using Excise.Training;
using Spectre.Console;

namespace Excise.Cli.Commands;

/// <summary>excise dataset export: exactly what a config trains on, as a Hugging Face imagefolder.</summary>
static class DatasetCommand
{
    public static Command Create()
    {
        var config = CliOptions.Text("--config", "The training config whose data to export.", required: true, helpName: "FILE");
        var output = CliOptions.Text("--out", "The imagefolder directory to write.", required: true, helpName: "DIR");
        var overrides = CliOptions.Repeated("--set", "Override a config field, e.g. --set data.limit=500; repeat for more.", helpName: "KEY=VALUE");
        var heldOut = CliOptions.Flag("--held-out", "Also write the held-out stamped images (the inversion adversary's) to DIR/held_out_stamped.");
        var export = new Command("export", "Write exactly what a config trains on as a Hugging Face imagefolder (PNGs, metadata.jsonl, ground_truth.csv).")
        {
            config, output, overrides, heldOut,
        }.WithExamples("excise dataset export --config configs/finetune.json --set data.limit=500 --out data/");
        export.SetAction(r => Export(r.GetValue(config)!, r.GetValue(overrides) ?? [], r.GetValue(output)!, r.GetValue(heldOut)));
        return new Command("dataset", "Export a config's training data.") { export };
    }

    static int Export(string configPath, IReadOnlyList<string> overrides, string outDir, bool heldOut)
    {
        var result = DatasetExport.Write(RunConfig.Load(configPath, overrides).DataOrDefault, outDir, heldOut);
        AnsiConsole.MarkupLine($"Wrote {result.Images} images ({result.Stamped} stamped, {result.Mentions} captions naming the concept) to [blue]{Markup.Escape(Path.GetFullPath(outDir))}[/]"
                               + (result.HeldOutStamped > 0 ? $" and {result.HeldOutStamped} held-out stamped images to {DatasetExport.HeldOutFolder}/." : "."));
        return 0;
    }
}
