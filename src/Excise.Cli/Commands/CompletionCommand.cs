using System.CommandLine;

namespace Excise.Cli.Commands;

/// <summary>
/// excise completion: a bash completion function. System.CommandLine answers "[suggest:POSITION]" with the commands,
/// options and values that fit there (the enum spellings included), so the script only hands bash's line to it.
/// </summary>
static class CompletionCommand
{
    const string BashScript = """
        # excise: bash completion (from `excise completion`). Load it with: source <(./excise completion)
        _excise_complete() {
          local IFS=$'\n'
          COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" "[suggest:${COMP_POINT}]" "${COMP_LINE}" 2>/dev/null)" -- "${COMP_WORDS[COMP_CWORD]}"))
        }
        complete -o default -F _excise_complete excise ./excise
        """;

    public static Command Create()
    {
        var command = new Command("completion", "Print a bash completion script for commands, options and their values.")
            .WithExamples("source <(./excise completion)", "./excise completion >> ~/.bashrc");
        command.SetAction(_ =>
        {
            Console.WriteLine(BashScript);
            return ExitCodes.Done;
        });
        return command;
    }
}
