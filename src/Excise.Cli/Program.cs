using Excise.Cli;
using Excise.Cli.Commands;
using Spectre.Console;

try
{
    if (args.Length == 0 || args[0] is "help" or "--help" or "-h")
    {
        Help.Print();
        return 0;
    }
    var rest = args[1..];
    if (rest.Any(a => a is "--help" or "-h"))
    {
        Help.Print();
        return 0;
    }
    return args[0] switch
    {
        "train" => TrainCommand.Run(rest),
        "sample" => SampleCommand.Run(rest),
        "dataset" => DatasetCommand.Run(rest),
        "concept" => ConceptCommand.Run(rest),
        "verify" => VerifyCommand.Run(rest),
        "judges" => JudgesCommand.Run(rest),
        "masks" => MasksCommand.Run(rest),
        "attack" => AttackCommand.Run(rest),
        "eval" => EvalCommand.Run(rest),
        "demo" => DemoCommand.Run(rest),
        "bench" => BenchCommand.Run(rest),
        "convert" => ConvertCommand.Run(rest),
        "base" => BaseCommand.Run(rest),
        "version" or "--version" => Help.Version(),
        _ => throw new UsageException($"Unknown command '{args[0]}'. Run 'excise help'."),
    };
}
catch (UsageException e)
{
    AnsiConsole.MarkupLine($"[red]error:[/] {Markup.Escape(e.Message)}");
    return 2;
}
catch (Exception e) when (e is InvalidDataException or FileNotFoundException or DirectoryNotFoundException or ArgumentException or NotSupportedException
                              or InvalidOperationException or IOException or Excise.Training.TrainingDivergedException or KeyNotFoundException)
{
    AnsiConsole.MarkupLine($"[red]error:[/] {Markup.Escape(e.Message)}");
    if (Environment.GetEnvironmentVariable("EXCISE_DEBUG") == "1") AnsiConsole.WriteException(e);
    return 1;
}
