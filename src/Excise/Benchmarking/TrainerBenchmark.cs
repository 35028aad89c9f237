using Excise.Training;

namespace Excise.Benchmarking;

/// <summary>
/// The real training loop (<see cref="TrainingJob"/>: data, caption dropout, noise, AdamW, EMA, metrics) on a slice of
/// the real dataset: first-step latency, step times, and resident memory at step 100 and at the end (flat means
/// nothing accumulates per step).
/// </summary>
public sealed record TrainerBenchmark(
    string Model, int Steps, int Images, double SetupSeconds, double FirstStepSeconds, TimingSummary Step, double ImagesPerSecond,
    double ResidentAtStep100Megabytes, double ResidentAtEndMegabytes, double GrowthMegabytes, double PeakResidentMegabytes)
{
    public const int MemoryBaselineStep = 100;

    public static TrainerBenchmark Measure(BenchModel model, int steps, int images, int threads, Action<string> log)
    {
        var run = new RunDirectory(Directory.CreateTempSubdirectory("excise-bench-trainer-").FullName);
        try
        {
            var config = model.Load(
            [
                $"training.steps={steps}", $"data.limit={images}", "preview.per_prompt=0", "training.checkpoint_every=0",
                "training.log_every=100", $"threads={threads}",
            ]);
            double at100 = double.NaN;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            double setup = double.NaN;
            var progress = new SyncProgress<TrainingProgress>(p =>
            {
                if (double.IsNaN(setup)) setup = clock.Elapsed.TotalSeconds - p.Elapsed.TotalSeconds;
                if (p.Step == MemoryBaselineStep) at100 = ProcessMemory.ResidentMegabytes();
                if (p.Step % 100 == 0) log($"trainer: step {p.Step}/{p.TotalSteps}, {p.SecondsPerStep:F3} s/step, RSS {ProcessMemory.ResidentMegabytes():F0} MB.");
            });
            var result = TrainingJob.Run(config, run, resume: false, progress);
            double end = ProcessMemory.ResidentMegabytes();
            var times = result.Summary.StepSeconds ?? throw new InvalidOperationException("The trainer reported no step times.");
            var steady = TimingSummary.Of(times.Skip(Math.Min(3, times.Count - 1)).ToList());
            return new TrainerBenchmark(model.Name, times.Count, result.TrainImages, setup, times[0], steady,
                config.TrainingOrDefault.BatchSize / steady.MedianSeconds, at100, end, end - at100, ProcessMemory.PeakResidentMegabytes());
        }
        finally
        {
            try { Directory.Delete(run.Root, recursive: true); } catch (IOException) { }
        }
    }
}
