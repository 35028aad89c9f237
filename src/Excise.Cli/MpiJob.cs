using Excise.Distributed;
using Spectre.Console;

namespace Excise.Cli;

/// <summary>A command run by every rank of an mpirun job (or by one process alone).</summary>
static class MpiJob
{
    /// <summary>
    /// Runs <paramref name="body"/>; on several ranks an error is printed with the rank it happened on and ends every
    /// rank (MPI_Abort), because the others would otherwise wait for this one forever at their next collective call.
    /// </summary>
    public static int Run(ProcessGroup group, Func<int> body)
    {
        if (group.Size == 1) return body();
        try
        {
            return body();
        }
        catch (Exception e)
        {
            AnsiConsole.MarkupLine($"[red]error[/] (rank {group.Rank} of {group.Size}): {Markup.Escape(e.Message)}");
            if (Environment.GetEnvironmentVariable("EXCISE_DEBUG") == "1") AnsiConsole.WriteException(e);
            group.Abort(ExitCodes.Failed);
            throw; // not reached
        }
    }
}
