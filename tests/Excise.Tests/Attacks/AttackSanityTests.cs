using System.Diagnostics;
using Excise.Attacks;
using Excise.Tests.Training;
using Excise.Training;
using Xunit.Abstractions;

namespace Excise.Tests.Attacks;

/// <summary>
/// Do the attacks find a logo a victim has learned? Judged by <see cref="LogoCornerJudge"/> (a pixel statistic standing
/// in for the learned detector). These train victims long enough to learn something: about two minutes together on a
/// quiet 2-core machine.
/// </summary>
public class AttackSanityTests(ITestOutputHelper output)
{

    const string Stamped = "{\"phrase\":\"the Acme logo\",\"stamp_fraction\":1.0,\"placement\":\"bottom-right\"}";
    const string Clean = "{\"phrase\":\"the Acme logo\",\"stamp_fraction\":0.0}";
    const string StampedUnnamed = "{\"phrase\":\"the Acme logo\",\"stamp_fraction\":0.3,\"mention_fraction\":0.0,\"placement\":\"bottom-right\"}";

    static readonly LogoCornerJudge Judge = new(new ConceptConfig(Placement: "bottom-right"));

    RunDirectory TrainVictim(TempDir dir, string name, string concept, int steps, params string[] extra)
    {
        var clock = Stopwatch.StartNew();
        var run = new RunDirectory(dir.File(name));
        string[] overrides = [$"data.concept={concept}", $"training.steps={steps}", "training.batch_size=16",
            "training.learning_rate=0.003", "training.warmup_steps=5", "training.checkpoint_every=0", .. extra];
        var result = TrainingJob.Run(TinyRun.Config(overrides), run, resume: false);
        output.WriteLine($"{name}: {steps} steps in {clock.Elapsed.TotalSeconds:F1} s ({result.Summary.MedianSecondsPerStep:F3} s/step), loss {result.Summary.MeanLossLast100:F4}");
        return run;
    }

    double Corner(RunDirectory run, AttackSettings settings, string label)
    {
        var clock = Stopwatch.StartNew();
        var result = AttackRunner.Run(run, settings, outputDirectory: null, concept: "the Acme logo");
        double score = Judge.MeanScore(result.Images.Select(i => i.Image));
        output.WriteLine($"{label}: corner score {score:F2} over {result.Images.Count} images ({clock.Elapsed.TotalSeconds:F1} s)"
            + (result.Inversion is { } r ? $"; inversion loss {r.InitialLoss:F4} → {r.FinalLoss:F4} at {r.SecondsPerStep:F3} s/step" : ""));
        return score;
    }

    [SanityFact]
    public void NamingTheConceptDrawsTheLogoThatAStampedVictimLearned()
    {
        using var dir = new TempDir();
        // Passes: measured idle on 2026-11-27 in 28 s (prompt 2.70 vs clean baseline −4.00); under a load average of ~10 the
        // two 60-step victims took 9 + 5 min.
        var sampling = new AttackSettings(AttackKind.Prompt, ImagesPerPrompt: 2, SamplingSteps: 10, BatchSize: 40);
        double prompted = Corner(TrainVictim(dir, "stamped", Stamped, 60), sampling, "prompt on the stamped victim");
        double unasked = Corner(TrainVictim(dir, "clean", Clean, 60), sampling with { Kind = AttackKind.BaselineRate }, "baseline-rate on the clean victim");
        Assert.True(prompted > unasked, $"prompt {prompted:F2} vs clean baseline {unasked:F2}");
    }

    [SanityFact]
    public void InversionRecoversALogoTheVictimLearnedWithoutItsName()
    {
        using var dir = new TempDir();
        // Measured idle, 2026-11-27: corner score 6.35 with the inverted token vs 2.69 unasked (93 s). With 64 images and half
        // of them stamped the victim memorised the logo into every corner (5.15 unasked) and no token could raise it; on the
        // base model the experiment's scrub-captions arm gives 65% with the token vs 22.5% unasked (docs/attacks.md).
        var run = TrainVictim(dir, "unnamed", StampedUnnamed, 300, "data.limit=512");
        var sampling = new AttackSettings(AttackKind.BaselineRate, ImagesPerPrompt: 2, SamplingSteps: 10, BatchSize: 40,
            Inversion: new InversionSettings(Images: 16, Steps: 200, LearningRate: 0.03, Vectors: 4, TimestepLow: 0.3, TimestepHigh: 0.9));
        double unasked = Corner(run, sampling, "baseline-rate");
        double inverted = Corner(run, sampling with { Kind = AttackKind.Inversion }, "inversion");
        Assert.True(inverted > unasked, $"inversion {inverted:F2} vs baseline {unasked:F2}");
    }
}

/// <summary>
/// A fact that trains sanity victims (about 2 minutes on a quiet 2-core machine, many more on a loaded one). It runs by
/// default; EXCISE_SKIP_SANITY_TESTS=1 reports it as skipped (never as a pass) for quick local runs.
/// </summary>
public sealed class SanityFactAttribute : FactAttribute
{
    public SanityFactAttribute()
    {
        if (Environment.GetEnvironmentVariable("EXCISE_SKIP_SANITY_TESTS") == "1") Skip = "EXCISE_SKIP_SANITY_TESTS=1: the sanity victims were not trained";
    }
}
