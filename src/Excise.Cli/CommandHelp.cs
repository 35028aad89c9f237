using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.Runtime.CompilerServices;

namespace Excise.Cli;

/// <summary>
/// Every command's <c>--help</c> is System.CommandLine's (usage, each option with its default) followed by the command's
/// examples, which the library has no place for.
/// </summary>
static class CommandHelp
{
    static readonly ConditionalWeakTable<Command, string[]> Examples = new();

    public static T WithExamples<T>(this T command, params string[] lines) where T : Command
    {
        Examples.AddOrUpdate(command, lines);
        return command;
    }

    /// <summary>Makes the root's help option (it applies to every command) print the parsed command's examples after its help.</summary>
    public static void AppendExamples(RootCommand root)
    {
        var help = root.Options.OfType<HelpOption>().Single();
        help.Action = new HelpWithExamples((HelpAction)help.Action!);
    }

    sealed class HelpWithExamples(HelpAction inner) : SynchronousCommandLineAction
    {
        public override bool ClearsParseErrors => true;

        public override int Invoke(ParseResult parseResult)
        {
            int exitCode = inner.Invoke(parseResult);
            if (Examples.TryGetValue(parseResult.CommandResult.Command, out var lines))
            {
                var output = parseResult.InvocationConfiguration.Output;
                output.WriteLine("Examples:");
                foreach (var line in lines) output.WriteLine("  " + line);
                output.WriteLine();
            }
            return exitCode;
        }
    }
}
