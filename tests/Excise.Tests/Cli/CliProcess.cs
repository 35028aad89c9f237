using System.Diagnostics;

namespace Excise.Tests.Cli;

/// <summary>Runs the built CLI as a user would, without colour, and returns its exit code and everything it printed.</summary>
static class CliProcess
{
    public static (int ExitCode, string Output) Run(params string[] args)
    {
        var psi = new ProcessStartInfo(RepositoryPaths.Cli, args) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = RepositoryPaths.Root };
        psi.Environment["NO_COLOR"] = "1";
        using var process = Process.Start(psi)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        return (process.ExitCode, output.Result + error.Result);
    }
}
