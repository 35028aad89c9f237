using Excise.Serialization;
using Spectre.Console;

namespace Excise.Cli.Commands;

/// <summary>excise convert: a PyTorch pickle checkpoint to safetensors, only with --allow-pickle.</summary>
static class ConvertCommand
{
    public const string Usage = "excise convert --from model.pth --to model.safetensors --allow-pickle";

    public static int Run(string[] args)
    {
        var cl = new CommandLine(args, new HashSet<string> { "allow-pickle" });
        var from = cl.Required("from", "the PyTorch checkpoint (.pt/.pth/.ckpt/.bin) to convert");
        var to = cl.Required("to", "the .safetensors file to write");
        bool allowPickle = cl.Flag("allow-pickle");
        cl.EnsureAllUsed();
        var result = PickleConversion.ToSafetensors(from, to, allowPickle);
        AnsiConsole.MarkupLine($"Wrote [blue]{Markup.Escape(Path.GetFullPath(to))}[/]: {result.Tensors} tensors, {result.Values:N0} values" +
                               (result.NestedUnder is null ? "." : $" (taken from '{Markup.Escape(result.NestedUnder)}')."));
        return 0;
    }
}
