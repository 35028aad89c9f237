using System.CommandLine;
using System.CommandLine.Invocation;
using Excise.Cli;
using Excise.Cli.Commands;
using Spectre.Console;

var root = new RootCommand("excise — selective learning for text-to-image diffusion models. 'excise COMMAND --help' shows a command's options, defaults and examples.")
{
    DemoCommand.Create(),
    TrainCommand.Create(),
    SampleCommand.Create(),
    ConceptCommand.Create(),
    VerifyCommand.Create(),
    MasksCommand.Create(),
    AttackCommand.Create(),
    EvalCommand.Create(),
    JudgesCommand.Create(),
    DatasetCommand.Create(),
    BaseCommand.Create(),
    BenchCommand.Create(),
    ConvertCommand.Create(),
    CompletionCommand.Create(),
};
CommandHelp.AppendExamples(root);

// "excise help [COMMAND]" and "excise version" read as the conventional --help and --version.
string[] line = args switch
{
    [] or ["help"] => ["--help"],
    ["help", .. var command] => [.. command, "--help"],
    ["version"] => ["--version"],
    _ => args,
};
// Response files (@file) are off: a prompt or caption may start with '@'.
var parsed = root.Parse(line, new ParserConfiguration { ResponseFileTokenReplacer = null });
try
{
    if (parsed.Action is ParseErrorAction parseError)
    {
        // The errors and System.CommandLine's "did you mean" suggestions, then the way to the command's help: the
        // whole help after every typo would bury the one line that matters.
        parseError.ShowHelp = false;
        parsed.Invoke();
        Console.Error.WriteLine($"Run '{string.Join(' ', CommandPath(parsed.CommandResult.Command))} --help' for its options.");
        return ExitCodes.Usage;
    }
    // Help and --version are written through this writer so their usage lines name the command users type (the
    // binary is Excise.Cli, run by ./excise); the commands themselves print through Spectre.Console.
    var helpText = new StringWriter();
    int exitCode = parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false, Output = helpText });
    Console.Write(helpText.ToString().Replace("Excise.Cli ", "excise "));
    return exitCode;
}
catch (UsageException e)
{
    AnsiConsole.MarkupLine($"[red]error:[/] {Markup.Escape(e.Message)}");
    return ExitCodes.Usage;
}
catch (Exception e) when (e is InvalidDataException or FileNotFoundException or DirectoryNotFoundException or ArgumentException or NotSupportedException
                              or InvalidOperationException or IOException or Excise.Training.TrainingDivergedException or KeyNotFoundException)
{
    AnsiConsole.MarkupLine($"[red]error:[/] {Markup.Escape(e.Message)}");
    if (Environment.GetEnvironmentVariable("EXCISE_DEBUG") == "1") AnsiConsole.WriteException(e);
    return ExitCodes.Failed;
}

static IEnumerable<string> CommandPath(Command command) =>
    command.Parents.OfType<Command>().SelectMany(CommandPath).Append(command is RootCommand ? "excise" : command.Name);
