using System.Diagnostics;
using Excise.Attacks;
using Excise.Training;

namespace Excise.Experiment;

/// <summary>
/// The experiment's work in one currency — a training step at batch 32 on the run's model — so one progress bar
/// spans training, sampling and inversion, and the ETA comes from the speed measured so far in this run.
/// The unit costs are estimates (a sampling forward costs about a third of a training step); the ETA corrects
/// itself as work is done. Arms fine-tuned side by side report through it from their own threads.
/// </summary>
sealed class WorkBudget
{
    public const double JudgeUnits = 20;
    readonly ExperimentPlan plan;
    readonly Stopwatch clock;
    readonly IProgress<ExperimentProgress>? progress;
    readonly object gate = new();
    readonly Dictionary<string, (double Units, string Status)> running = new(); // jobs in flight: their share done so far
    double done;
    string stage = "starting";

    public WorkBudget(ExperimentPlan plan, double baseUnits, Stopwatch clock, IProgress<ExperimentProgress>? progress)
    {
        this.plan = plan;
        this.clock = clock;
        this.progress = progress;
        BaseUnits = baseUnits;
        var armConfig = Configuration.ConfigLoader.LoadFile<RunConfig>(plan.FinetuneConfig, plan.FinetuneOverrides);
        // Every seed also attacks the base model once (the never-saw-it floor): an evaluation without a fine-tune.
        Total = baseUnits + JudgeUnits + plan.Arms.Count * plan.Seeds * (TrainingUnits(armConfig) + EvaluationUnits) + plan.Seeds * EvaluationUnits;
    }

    public double BaseUnits { get; }
    public double Total { get; }

    public double EvaluationUnits => plan.Attacks.Sum(AttackUnits) + plan.ResNetImages * 0.05 * plan.Attacks.Count;

    public static double TrainingUnits(RunConfig config) => config.TrainingOrDefault.Steps * config.TrainingOrDefault.BatchSize / 32.0;

    public double AttackUnits(AttackKind kind)
    {
        int classes = Data.FashionMnistClasses.Count;
        int prompts = kind switch
        {
            AttackKind.Prompt => AttackPrompts.DirectTemplates("the concept").Count * classes,
            AttackKind.BaselineRate => AttackPrompts.PlainTemplates.Count * classes,
            AttackKind.Paraphrase => 6 * classes, // the built-in paraphrase templates; a user file adds more
            _ => classes,
        };
        var attack = plan.Attack;
        double sampling = prompts * attack.ImagesPerPrompt * attack.SamplingSteps * 2 / 3.0 / 32;
        var inversion = attack.InversionOrDefault;
        return sampling + (kind == AttackKind.Inversion ? inversion.Steps * inversion.BatchSize / 32.0 : 0);
    }

    public void Stage(string name)
    {
        lock (gate)
        {
            stage = name;
            Report(name);
        }
    }

    /// <summary>Adds finished work; <paramref name="job"/>'s in-flight share, if any, is replaced by it in the same move.</summary>
    public void Advance(double units, string status, string? job = null)
    {
        lock (gate)
        {
            if (job is not null) running.Remove(job);
            done = Math.Min(Total, done + units);
            Report(status);
        }
    }

    public void Status(string status, string? job = null)
    {
        lock (gate)
        {
            if (job is not null) running[job] = (running.GetValueOrDefault(job).Units, status);
            Report(status);
        }
    }

    /// <summary>Training progress of <paramref name="job"/>, moving the bar step by step.</summary>
    public IProgress<TrainingProgress> Training(RunConfig config, string job)
    {
        double units = TrainingUnits(config);
        return new SyncProgress<TrainingProgress>(p =>
        {
            lock (gate)
            {
                running[job] = (units * p.Step / Math.Max(1, p.TotalSteps), $"{job}: step {p.Step}/{p.TotalSteps} · loss {p.Loss:F4}");
                Report(running[job].Status);
            }
        });
    }

    // Callers hold the gate, so reports reach the consumer in order and the position never moves back.
    void Report(string status)
    {
        if (progress is null) return;
        if (running.Count > 1) status = string.Join(" | ", running.Values.Select(r => r.Status));
        double position = Math.Min(Total, done + running.Values.Sum(r => r.Units));
        TimeSpan? remaining = position > 0 && clock.Elapsed.TotalSeconds > 5
            ? TimeSpan.FromSeconds(clock.Elapsed.TotalSeconds * (Total - position) / position)
            : null;
        progress.Report(new ExperimentProgress(running.Count > 0 ? string.Join(", ", running.Keys) : stage, position, Total, status, clock.Elapsed, remaining));
    }
}
