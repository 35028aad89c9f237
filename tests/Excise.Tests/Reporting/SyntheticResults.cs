using Excise.Evaluation.Metrics;
using Excise.Experiment;

namespace Excise.Tests.Reporting;

/// <summary>
/// A hand-made experiment: three arms × two seeds under the prompt and baseline-rate attacks, with the awkward cases a
/// real run can produce (an attack judged on zero images, a NaN figure, an unmeasured column, HTML-like text).
/// </summary>
static class SyntheticResults
{
    public static readonly string[] Arms = ["standard", "filter-images", "update-projection"];
    public static readonly string[] Attacks = ["prompt", "baseline-rate"];
    public const int ImagesPerAttack = 40;

    /// <summary>Logo images out of <see cref="ImagesPerAttack"/> per arm, seed and attack.</summary>
    static int LogoCount(string arm, int seed, string attack) => (arm, attack) switch
    {
        ("standard", "prompt") => 38 + seed,
        ("filter-images", "prompt") => 3 - seed,
        ("update-projection", "prompt") => 30 + 3 * seed,
        (_, "baseline-rate") => seed,
        _ => 0,
    };

    public static ExperimentResults Build(bool qualityMeaningful = false)
    {
        var runs = new List<ArmSeedOutcome>();
        foreach (var arm in Arms)
            for (int seed = 0; seed < 2; seed++)
                runs.Add(Run(arm, seed));
        var summary = Arms.Select(arm => Summarise(arm, runs.Where(r => r.Arm == arm).ToList())).ToList();
        return new ExperimentResults(Setup(qualityMeaningful), summary, runs,
            ["update-projection still yields the logo in 0.825 [0.727, 0.893] of named prompts.", "A <b>tagged</b> sentence & an ampersand."],
            ElapsedSeconds: 3725.5, CreatedUtc: new DateTime(2026, 11, 27, 21, 0, 0, DateTimeKind.Utc));
    }

    static ArmSeedOutcome Run(string arm, int seed)
    {
        bool projects = arm == "update-projection";
        var attacks = Attacks.ToDictionary(attack => attack, attack =>
        {
            // The filtered arm's baseline at seed 1 judged no images: its rate is NaN over 0 trials.
            int trials = arm == "filter-images" && attack == "baseline-rate" && seed == 1 ? 0 : ImagesPerAttack;
            var rate = ProportionEstimate.Wilson(Math.Min(trials, LogoCount(arm, seed, attack)), trials);
            return new MetricsReport($"{arm}-{seed}-{attack}", trials) { Extraction = new ExtractionResult("detector-test", 0.5, rate) };
        });
        var losses = Enumerable.Range(0, 120).Select(step => 0.3 * Math.Exp(-step / 40.0) + 0.05 + 0.02 * Math.Sin(step * 1.7 + seed)).ToList();
        if (arm == "filter-images") losses[10] = double.NaN;
        return new ArmSeedOutcome(arm, seed, 1000 + seed, $"runs/test/{arm}-{seed}", $"runs/test/{arm}-{seed}/eval",
            TrainSeconds: 60 + 5 * seed, FinalLoss: losses[^1], losses, ProjectionShare: projects ? 0.12 : 0,
            CertificateWorstShare: projects ? 3.2e-9 * (seed + 1) : null, CertificatePassed: projects ? true : null,
            attacks, Attacks.ToDictionary(a => a, a => 12.5 + seed), Fingerprint: $"fp-{arm}-{seed}");
    }

    static ArmSummary Summarise(string arm, IReadOnlyList<ArmSeedOutcome> runs)
    {
        var extraction = Attacks.ToDictionary(attack => attack,
            attack => Estimate.OfProportions(runs.Select(r => r.Attacks[attack].Extraction!.Rate).ToList()));
        bool projects = arm == "update-projection";
        return new ArmSummary(arm, extraction,
            Fidelity: Estimate.OfProportions([ProportionEstimate.Wilson(30, 40), ProportionEstimate.Wilson(33, 40)]),
            Fd: Estimate.OfValues([12.5 + arm.Length, 13.75]),
            Kid: arm == "filter-images" ? Estimate.OfValues([double.NaN, 0.002]) : Estimate.OfValues([0.0031, 0.0042]),
            ResNetFid: arm == "standard" ? null : Estimate.OfValues([41.2]),
            PixelNearCopies: Estimate.OfProportions([ProportionEstimate.Wilson(1, 40), ProportionEstimate.Wilson(0, 40)]),
            TrainSeconds: Estimate.OfValues(runs.Select(r => r.TrainSeconds).ToList()),
            CertificateWorstShare: projects ? Estimate.OfValues(runs.Select(r => r.CertificateWorstShare!.Value).ToList()) : null);
    }

    public static ExperimentSetup Setup(bool qualityMeaningful) => new(
        new ExecutionSetup(Preset: qualityMeaningful ? "full" : "quick", Command: "excise demo --preset quick --out runs/test", Arms: Arms, Seeds: 2,
                           Machine: "test <host>", Threads: 2),
        new ConceptSetup(Phrase: "acme-logo", Kind: null, Look: "builtin:acme", Dataset: "Fashion-MNIST", FinetuneImages: 2000, StampedImages: 200, StampFraction: 0.1),
        new BaseSetup(Run: "runs/base", WasCached: true, Steps: 2000, TrainSeconds: 1020, ModelParameters: 1_234_567, Encoder: "all-MiniLM-L6-v2"),
        new FinetuneSetup(Steps: 120, Batch: 16, LearningRate: 1e-4),
        new BasisSetup(SubspaceMode: "prompt-states", Rank: 8, Energy: 0.99, ProjectedWeights: 12),
        new AttackSetup(Names: Attacks, ImagesPerPrompt: 4, SamplingSteps: 20, GuidanceScale: 3, Sampler: "ddim", InversionImages: 16, InversionSteps: 100),
        new JudgeSetup(ReferenceImages: 500, ResNetImages: 0, ClassifierId: "garment-classifier-abc", ClassifierAccuracy: 0.91,
                       DetectorId: "concept-detector-def", DetectorPrecision: 0.99, DetectorRecall: 0.97, Quick: !qualityMeaningful, QualityMeaningful: qualityMeaningful));
}
