using System.Diagnostics;
using System.Globalization;
using System.Text;
using Excise.Training;

namespace Excise.Benchmarking;

/// <summary>The real training loop of one model on <paramref name="Ranks"/> data-parallel processes with one thread each.</summary>
/// <param name="AllreduceSeconds">Rank 0's time in the gradient allreduce, waiting for the slower rank included (0 on one rank).</param>
/// <param name="AllreduceShare">That time's share of the training time.</param>
public sealed record ScalingPoint(int Ranks, int Steps, double MedianSecondsPerStep, double ImagesPerSecond, double TrainingSeconds,
                                  double AllreduceSeconds, double AllreduceShare);

/// <summary>
/// How data-parallel training scales: the same run (the model's config, a few steps, one thread per rank) in one process
/// and under <c>mpirun -np N</c>, launched as separate jobs of the CLI because MPI can be initialised once per process.
/// <paramref name="Skipped"/> says why there are no points (no mpirun on PATH).
/// </summary>
/// <param name="GradientMegabytes">What one allreduce sums: 4 bytes per trainable parameter.</param>
/// <param name="Speedup">Images/s on the most ranks over images/s on one.</param>
/// <param name="LoadAverage">The machine's 1-minute load average before the runs: on a machine other jobs share, the ranks compete with them for the cores.</param>
public sealed record ScalingBenchmark(string Model, int Batch, double GradientMegabytes, IReadOnlyList<ScalingPoint> Points, double? Speedup,
                                      double? LoadAverage, string? Skipped)
{
    /// <summary>Open MPI's launcher on PATH, or null.</summary>
    public static string? FindMpirun() => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
        .Select(dir => Path.Combine(dir, "mpirun")).FirstOrDefault(File.Exists);

    /// <param name="executable">The excise CLI to launch (the running one).</param>
    /// <param name="rankCounts">The rank counts to measure, e.g. 1 and 2; one rank runs without mpirun.</param>
    public static ScalingBenchmark Measure(BenchModel model, string? executable, IReadOnlyList<int> rankCounts, int steps, int images, Action<string> log)
    {
        var config = model.Load();
        int batch = config.TrainingOrDefault.BatchSize;
        double gradientMegabytes;
        using (var unet = new Models.UNet2DConditionModel(config.ResolveUNetConfig())) gradientMegabytes = 4.0 * unet.ParameterCount / 1e6;
        double? load = LoadAverageNow();
        string? skipped = executable is null || !File.Exists(executable) ? "the excise CLI to launch was not found"
            : rankCounts.Any(n => n > 1) && FindMpirun() is null ? "mpirun is not on PATH (apt-get install -y openmpi-bin)"
            : null;
        if (skipped is not null)
        {
            log($"scaling: skipped, {skipped}.");
            return new ScalingBenchmark(model.Name, batch, gradientMegabytes, [], null, load, skipped);
        }
        var points = rankCounts.Select(ranks => MeasureOne(model, executable!, ranks, steps, images, log)).ToList();
        double? speedup = points.Count > 1 ? points[^1].ImagesPerSecond / points[0].ImagesPerSecond : null;
        return new ScalingBenchmark(model.Name, batch, gradientMegabytes, points, speedup, load, null);
    }

    static ScalingPoint MeasureOne(BenchModel model, string executable, int ranks, int steps, int images, Action<string> log)
    {
        var run = new RunDirectory(Directory.CreateTempSubdirectory("excise-bench-scaling-").FullName);
        try
        {
            string[] train =
            [
                executable, "train", "--config", model.ConfigPath, "--out", run.Root,
                .. new[] { $"training.steps={steps}", $"data.limit={images}", "preview.per_prompt=0", "training.checkpoint_every=0",
                           $"training.log_every={steps}", "threads=1" }.SelectMany(o => new[] { "--set", o }),
            ];
            // One rank runs as a plain process: that is the one-process trainer, not MPI with a group of one.
            // --oversubscribe: more ranks than this machine's cores are allowed; --allow-run-as-root: containers and CI run as root.
            string[] command = ranks == 1 ? train : [FindMpirun()!, "--allow-run-as-root", "--oversubscribe", "-np", ranks.ToString(CultureInfo.InvariantCulture), .. train];
            var (exitCode, output) = RunProcess(command);
            if (exitCode != 0)
                throw new InvalidOperationException($"scaling: {string.Join(' ', command)} failed with exit code {exitCode}:\n{Tail(output, 40)}");
            var summary = RunSummary.Load(run);
            double allreduce = summary.AllreduceSeconds ?? 0;
            var point = new ScalingPoint(ranks, summary.Steps, summary.MedianSecondsPerStep, summary.ImagesPerSecond, summary.ElapsedSeconds,
                                         allreduce, summary.ElapsedSeconds > 0 ? allreduce / summary.ElapsedSeconds : 0);
            log($"scaling: {ranks} rank{(ranks == 1 ? "" : "s")} × 1 thread: {point.MedianSecondsPerStep:F3} s/step, {point.ImagesPerSecond:F1} images/s" +
                (ranks > 1 ? $", allreduce {point.AllreduceShare:P1} of the training time" : "") + ".");
            return point;
        }
        finally
        {
            try { Directory.Delete(run.Root, recursive: true); } catch (IOException) { }
        }
    }

    static (int ExitCode, string Output) RunProcess(string[] command)
    {
        var psi = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in command.Skip(1)) psi.ArgumentList.Add(argument);
        psi.Environment["NO_COLOR"] = "1";
        psi.Environment["TORCH_NUM_THREADS"] = psi.Environment["OMP_NUM_THREADS"] = "1";
        var output = new StringBuilder();
        using var process = new Process { StartInfo = psi };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        process.WaitForExit();
        lock (output) return (process.ExitCode, output.ToString());
    }

    static string Tail(string text, int lines) => string.Join('\n', text.Split('\n').TakeLast(lines));

    static double? LoadAverageNow()
    {
        const string path = "/proc/loadavg";
        return File.Exists(path) && double.TryParse(File.ReadAllText(path).Split(' ')[0], CultureInfo.InvariantCulture, out var load) ? load : null;
    }
}
