using System.Diagnostics;
using System.Text;
using static TorchSharp.torch;

namespace Excise.Tests.Distributed;

/// <summary>A test that launches Open MPI's mpirun; skipped, saying why, on a machine without it.</summary>
public sealed class MpirunFactAttribute : FactAttribute
{
    public MpirunFactAttribute()
    {
        if (MpiRun.Mpirun is null) Skip = "mpirun is not on PATH: apt-get install -y openmpi-bin (./excise installs it when run as root).";
    }
}

/// <inheritdoc cref="MpirunFactAttribute"/>
public sealed class MpirunTheoryAttribute : TheoryAttribute
{
    public MpirunTheoryAttribute()
    {
        if (MpiRun.Mpirun is null) Skip = "mpirun is not on PATH: apt-get install -y openmpi-bin (./excise installs it when run as root).";
    }
}

/// <summary>The built CLI, alone or as the ranks of an mpirun job (2 ranks on this 2-core machine: --oversubscribe, and --allow-run-as-root since CI is root).</summary>
static class MpiRun
{
    public static string? Mpirun { get; } = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
        .Select(dir => Path.Combine(dir, "mpirun")).FirstOrDefault(File.Exists);

    public static string[] TinyTrainArgs(string runDir, int steps, params string[] overrides) =>
    [
        "train", "--config", RepositoryPaths.Config("smoke"), "--out", runDir,
        .. new[] { "data.limit=64", "training.batch_size=8", $"training.steps={steps}", "training.warmup_steps=2", "training.log_every=1",
                   "training.checkpoint_every=3", "preview.per_prompt=0", "threads=1" }.Concat(overrides).SelectMany(o => new[] { "--set", o }),
    ];

    /// <summary>Starts the CLI on <paramref name="ranks"/> processes (0: without mpirun), collecting everything it prints.</summary>
    public static (Process Process, StringBuilder Output) Start(int ranks, params string[] args)
    {
        if (!File.Exists(RepositoryPaths.Cli)) Assert.Fail($"{RepositoryPaths.Cli} is missing: build the solution (dotnet build Excise.slnx -c Release).");
        var psi = ranks == 0
            ? new ProcessStartInfo(RepositoryPaths.Cli, args)
            : new ProcessStartInfo(Mpirun!, ["--allow-run-as-root", "--oversubscribe", "-np", ranks.ToString(), RepositoryPaths.Cli, .. args]);
        psi.RedirectStandardOutput = psi.RedirectStandardError = true;
        psi.WorkingDirectory = RepositoryPaths.Root;
        psi.Environment["NO_COLOR"] = "1";
        psi.Environment["TORCH_NUM_THREADS"] = psi.Environment["OMP_NUM_THREADS"] = "1";
        var text = new StringBuilder();
        var process = new Process { StartInfo = psi };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (text) text.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (text) text.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return (process, text);
    }

    /// <summary>Runs to the end (at most <paramref name="timeout"/>) and returns the exit code and the output.</summary>
    public static (int ExitCode, string Output) Run(int ranks, TimeSpan timeout, params string[] args)
    {
        var (process, text) = Start(ranks, args);
        using (process)
        {
            if (!process.WaitForExit(timeout))
            {
                process.Kill(entireProcessTree: true);
                Assert.Fail($"{(ranks == 0 ? "excise" : "mpirun")} {string.Join(' ', args)} did not end within {timeout.TotalSeconds:F0} s:\n{text}");
            }
            process.WaitForExit();
            lock (text) return (process.ExitCode, text.ToString());
        }
    }

    public static void RunToCompletion(int ranks, params string[] args)
    {
        var (exitCode, output) = Run(ranks, TimeSpan.FromMinutes(5), args);
        Assert.True(exitCode == 0, $"exit code {exitCode}:\n{output}");
    }

    /// <summary>The largest |a − b| over every tensor of two weight files with the same names and shapes.</summary>
    public static double MaxAbsDifference(string a, string b)
    {
        using var scope = NewDisposeScope();
        using var first = Excise.Serialization.SafetensorsFile.Load(a);
        using var second = Excise.Serialization.SafetensorsFile.Load(b);
        Assert.Equal(first.Tensors.Keys.Order(), second.Tensors.Keys.Order());
        double max = 0;
        foreach (var (name, t) in first.Tensors)
        {
            Assert.Equal(t.shape, second[name].shape);
            if (t.numel() > 0) max = Math.Max(max, (t.to(ScalarType.Float64) - second[name].to(ScalarType.Float64)).abs().max().ToDouble());
        }
        return max;
    }
}
