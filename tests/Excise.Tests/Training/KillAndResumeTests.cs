using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Excise.Training;
using Xunit.Abstractions;

namespace Excise.Tests.Training;

/// <summary>
/// Fault injection: a real training run (the CLI, as a child process) is killed with SIGKILL at random moments —
/// half of them while a checkpoint is being written — and resumed each time. The final weights must equal an
/// uninterrupted run's bit for bit, every kill must lose at most one checkpoint interval of steps, and no kill may
/// leave a checkpoint that fails verification. EXCISE_KILL_TESTS sets the number of kills (default 6),
/// EXCISE_KILL_SEED the seed of the kill moments (default 1).
/// </summary>
public class KillAndResumeTests(ITestOutputHelper output)
{
    const int CheckpointEvery = 3;

    static string Cli => RepositoryPaths.Cli;

    static int EnvInt(string name, int fallback) => int.TryParse(Environment.GetEnvironmentVariable(name), out var v) ? v : fallback;

    sealed record Attempt(Process Process, StringBuilder Output);

    static Attempt Start(params string[] args)
    {
        var psi = new ProcessStartInfo(Cli, args) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = RepositoryPaths.Root };
        psi.Environment["NO_COLOR"] = "1";
        var text = new StringBuilder();
        var process = new Process { StartInfo = psi };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (text) text.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (text) text.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new Attempt(process, text);
    }

    static string[] FreshArgs(string runDir, int steps) =>
    [
        "train", "--config", RepositoryPaths.Config("smoke"), "--out", runDir,
        "--set", "data.limit=64", "--set", "training.batch_size=8", "--set", $"training.steps={steps}", "--set", "training.warmup_steps=2",
        "--set", "training.log_every=1", "--set", $"training.checkpoint_every={CheckpointEvery}", "--set", "preview.per_prompt=0", "--set", "threads=1",
    ];

    static void RunToCompletion(Attempt attempt)
    {
        Assert.True(attempt.Process.WaitForExit(TimeSpan.FromMinutes(5)), "the training run did not finish within 5 minutes");
        attempt.Process.WaitForExit();
        Assert.True(attempt.Process.ExitCode == 0, $"exit code {attempt.Process.ExitCode}:\n{attempt.Output}");
    }

    static int LastMetricsStep(string runDir)
    {
        var path = Path.Combine(runDir, "metrics.jsonl");
        if (!File.Exists(path)) return 0;
        int last = 0;
        foreach (var line in File.ReadAllLines(path))
            try { last = Math.Max(last, JsonDocument.Parse(line).RootElement.GetProperty("step").GetInt32()); }
            catch (JsonException) { }   // a line torn by the kill
        return last;
    }

    [Fact]
    public void Killed_at_random_moments_and_resumed_the_run_ends_with_the_uninterrupted_weights()
    {
        if (!File.Exists(Cli)) Assert.Fail($"{Cli} is missing: build the solution (dotnet build Excise.slnx -c Release).");
        int kills = EnvInt("EXCISE_KILL_TESTS", 6);
        var random = new Random(EnvInt("EXCISE_KILL_SEED", 1));
        int steps = 3 * kills + 6;
        var clock = Stopwatch.StartNew();
        using var dir = new TempDir();

        var reference = dir.File("uninterrupted");
        RunToCompletion(Start(FreshArgs(reference, steps)));
        var referenceSeconds = clock.Elapsed.TotalSeconds;

        var runDir = dir.File("killed");
        var store = new CheckpointStore(Path.Combine(runDir, "checkpoints"));
        int killed = 0, midCheckpoint = 0, maxLost = 0, totalLost = 0, finishedEarly = 0;
        for (int i = 0; i < kills; i++)
        {
            int startStep = store.FindLatestGood().Step;
            var attempt = Start(store.CompleteCheckpoints().Count > 0 ? ["train", "--resume", runDir] : FreshArgs(runDir, steps));
            bool duringCheckpoint = i % 2 == 1;
            var checkpointTemp = $".step-*.{attempt.Process.Id}.tmp";
            // Wait until this attempt has done a step of its own, then pick the moment.
            while (!attempt.Process.HasExited && LastMetricsStep(runDir) <= startStep) Thread.Sleep(2);
            if (duringCheckpoint)
            {
                while (!attempt.Process.HasExited && (!Directory.Exists(store.Dir) || Directory.GetDirectories(store.Dir, checkpointTemp).Length == 0)) Thread.Sleep(1);
                Thread.Sleep(random.Next(0, 10));
            }
            else Thread.Sleep(random.Next(0, 600));

            if (attempt.Process.HasExited) { finishedEarly++; break; }
            attempt.Process.Kill();   // SIGKILL on Unix: no handler, no flush, no finally
            attempt.Process.WaitForExit();
            killed++;
            if (Directory.Exists(store.Dir) && Directory.GetDirectories(store.Dir, checkpointTemp).Length > 0) midCheckpoint++;

            int reached = LastMetricsStep(runDir);
            var search = store.FindLatestGood();
            Assert.True(search.Rejections.Count == 0, $"kill {i + 1} left a damaged checkpoint: {string.Join(" ", search.Rejections)}");
            int lost = reached - search.Step;
            Assert.True(lost <= CheckpointEvery, $"kill {i + 1} at step {reached} lost {lost} steps (resumes from {search.Step}), more than one checkpoint interval ({CheckpointEvery})");
            maxLost = Math.Max(maxLost, lost);
            totalLost += lost;
        }
        RunToCompletion(Start(store.CompleteCheckpoints().Count > 0 ? ["train", "--resume", runDir] : FreshArgs(runDir, steps)));

        Assert.Equal(File.ReadAllBytes(Path.Combine(reference, "model.safetensors")), File.ReadAllBytes(Path.Combine(runDir, "model.safetensors")));
        var logged = File.ReadAllLines(Path.Combine(runDir, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt32());
        Assert.Equal(Enumerable.Range(1, steps), logged);
        Assert.Empty(Directory.GetDirectories(store.Dir, ".*.tmp"));
        output.WriteLine($"{steps} steps, checkpoint every {CheckpointEvery}: {killed} SIGKILLs survived ({midCheckpoint} while a checkpoint was being written, " +
                         $"{finishedEarly} attempts finished before their kill), steps lost per kill max {maxLost} / total {totalLost}; final weights bit-identical; " +
                         $"uninterrupted run {referenceSeconds:F1} s, whole test {clock.Elapsed.TotalSeconds:F1} s.");
        Assert.Equal(kills, killed);
    }
}
