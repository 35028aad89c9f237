using System.CommandLine;
using Excise.Serialization;
using Spectre.Console;

namespace Excise.Cli.Commands;

/// <summary>excise convert: a PyTorch pickle checkpoint to safetensors, only with --allow-pickle.</summary>
static class ConvertCommand
{
    public static Command Create()
    {
        var from = CliOptions.Text("--from", "The PyTorch checkpoint (.pt/.pth/.ckpt/.bin) to convert.", required: true, helpName: "FILE");
        var to = CliOptions.Text("--to", "The .safetensors file to write.", required: true, helpName: "FILE");
        var allowPickle = CliOptions.Flag("--allow-pickle", "Required: a pickle can run code when read, so convert only files you trust.");
        var command = new Command("convert", "Convert a PyTorch pickle checkpoint you trust to safetensors (pickles are never read without --allow-pickle).")
        {
            from, to, allowPickle,
        }.WithExamples("excise convert --from model.pth --to model.safetensors --allow-pickle");
        command.SetAction(r =>
        {
            var result = PickleConversion.ToSafetensors(r.GetValue(from)!, r.GetValue(to)!, r.GetValue(allowPickle));
            AnsiConsole.MarkupLine($"Wrote [blue]{Markup.Escape(Path.GetFullPath(r.GetValue(to)!))}[/]: {result.Tensors} tensors, {result.Values:N0} values" +
                                   (result.NestedUnder is null ? "." : $" (taken from '{Markup.Escape(result.NestedUnder)}')."));
            return 0;
        });
        return command;
    }
}
