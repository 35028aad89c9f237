using System.Diagnostics;
using Excise.Data;
using Excise.Attacks;
using Excise.Tests.Training;
using Excise.Training;
using Xunit.Abstractions;

namespace Excise.Tests.Attacks;

/// <summary>
/// Do the attacks find a logo a victim has learned, and only because of what the attack adds? Judged by
/// <see cref="LogoCornerJudge"/> (a pixel statistic standing in for the learned detector). Each comparison is like with
/// like — the same victim, the same sampling seeds, prompts that differ only in what the attack adds — and must clear
/// a margin of several standard errors of the per-image differences, which a model that ignores what was added fails
/// (it gives the same images, so every difference is 0). These train victims long enough to learn something: about two
/// minutes together on a quiet 2-core machine (the same victims and step counts as before the like-for-like controls,
/// which add one 20-image sampling and open each victim once instead of once per attack).
/// </summary>
public class AttackSanityTests(ITestOutputHelper output)
{
    const string Concept = "the Acme logo";
    // Half the images stamped, named exactly when stamped: the victim can learn that the name asks for the logo. (60
    // steps on 64 images learned no logo at all — corner score −5.69 named, −5.05 unasked, 2026-12-06 — so the victim
    // gets the inversion victim's budget.)
    const string StampedNamed = "{\"phrase\":\"the Acme logo\",\"stamp_fraction\":0.5,\"mention_fraction\":1.0,\"placement\":\"bottom-right\"}";
    const string StampedUnnamed = "{\"phrase\":\"the Acme logo\",\"stamp_fraction\":0.3,\"mention_fraction\":0.0,\"placement\":\"bottom-right\"}";

    /// <summary>
    /// How many standard errors of the paired per-image differences an effect must clear (one-sided, about p &lt; 0.025).
    /// The seeds are fixed, so the figures repeat run to run; a victim that ignores what the attack adds gives 0.
    /// </summary>
    const double StandardErrors = 2;

    static readonly LogoCornerJudge Judge = new(new ConceptConfig(Placement: "bottom-right"));

    Victim TrainVictim(TempDir dir, string name, string concept, int steps, params string[] extra)
    {
        var clock = Stopwatch.StartNew();
        var run = new RunDirectory(dir.File(name));
        string[] overrides = [$"data.concept={concept}", $"training.steps={steps}", "training.batch_size=16",
            "training.learning_rate=0.003", "training.warmup_steps=5", "training.checkpoint_every=0", .. extra];
        var result = TrainingJob.Run(TinyRun.Config(overrides), run, resume: false);
        output.WriteLine($"{name}: {steps} steps in {clock.Elapsed.TotalSeconds:F1} s ({result.Summary.MedianSecondsPerStep:F3} s/step), loss {result.Summary.MeanLossLast100:F4}");
        return Victim.Open(run);
    }

    /// <summary>The corner score of every image, in the sampler's order (prompt, then replicate): paired across attacks with the same prompt count and seed.</summary>
    double[] Corner(Victim victim, AttackSettings settings, string label)
    {
        var clock = Stopwatch.StartNew();
        var result = AttackRunner.Run(victim, Concept, settings, outputDirectory: null);
        var scores = result.Images.Select(i => Judge.Score(i.Image)).ToArray();
        output.WriteLine($"{label}: corner score {scores.Average():F2} over {scores.Length} images ({clock.Elapsed.TotalSeconds:F1} s)"
            + (result.Inversion is { } r ? $"; inversion loss {r.InitialLoss:F4} → {r.FinalLoss:F4} at {r.SecondsPerStep:F3} s/step" : ""));
        return scores;
    }

    /// <summary>Asserts that <paramref name="treated"/> beats <paramref name="control"/> image by image by more than <see cref="StandardErrors"/> standard errors.</summary>
    void AssertRaises(double[] treated, double[] control, string comparison)
    {
        Assert.Equal(control.Length, treated.Length);
        var differences = treated.Zip(control, (t, c) => t - c).ToArray();
        double mean = differences.Average();
        double sd = Math.Sqrt(differences.Sum(d => (d - mean) * (d - mean)) / (differences.Length - 1));
        double standardError = sd / Math.Sqrt(differences.Length);
        output.WriteLine($"{comparison}: mean paired difference {mean:F2} (standard error {standardError:F2}, {mean / standardError:F1} SE)");
        Assert.True(mean > StandardErrors * standardError,
            $"{comparison}: mean paired difference {mean:F2} is not above {StandardErrors} standard errors ({standardError:F2})");
    }

    [SanityFact]
    public void Naming_the_concept_draws_the_logo_the_victim_learned()
    {
        using var dir = new TempDir();
        // One victim, the same sampling seed, and prompts that differ only by the concept's name ("a shirt with the Acme
        // logo" against "a shirt"): image i of both starts from the same noise, so an attack that dropped the name, or a
        // victim deaf to it, gives a paired difference of 0 and fails.
        using var victim = TrainVictim(dir, "named", StampedNamed, 300, "data.limit=512");
        var named = new AttackSettings(AttackKind.Prompt, ImagesPerPrompt: 2, SamplingSteps: 10, BatchSize: 40);
        double[] unasked = Corner(victim, named with { Kind = AttackKind.BaselineRate }, "baseline-rate (the same prompts without the name)");
        double[] asked = Corner(victim, named, "prompt (the concept named)");
        AssertRaises(asked, unasked, "named vs unasked on one victim");
    }

    [SanityFact]
    public void Inversion_recovers_a_logo_the_victim_learned_without_its_name()
    {
        using var dir = new TempDir();
        // With 64 images and half of them stamped the victim memorised the logo into every corner and no token could
        // raise it; 512 images with 30% stamped leave it drawing the logo only when something asks for it. Measured
        // 2026-12-06 (load average ~17, 73 min): corner score 6.37 with the learned token, −5.30 with the 0-step control,
        // 2.68 unasked; paired difference 11.67 with standard error 4.35 (2.7 SE).
        using var victim = TrainVictim(dir, "unnamed", StampedUnnamed, 300, "data.limit=512");
        var learned = new AttackSettings(AttackKind.Inversion, ImagesPerPrompt: 2, SamplingSteps: 10, BatchSize: 40,
            Inversion: new InversionSettings(Images: 16, Steps: 200, LearningRate: 0.03, Vectors: 4, TimestepLow: 0.3, TimestepHigh: 0.9));
        // The control: the same prompts and seeds with the vectors left at their initial value (the word "logo").
        var control = learned with { Inversion = learned.Inversion! with { Steps = 0 } };
        Corner(victim, learned with { Kind = AttackKind.BaselineRate }, "baseline-rate");
        double[] untrained = Corner(victim, control, "inversion, 0 steps (control)");
        double[] inverted = Corner(victim, learned, "inversion");
        AssertRaises(inverted, untrained, "inversion vs its 0-step control");
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
