using System.Text.Json;
using Excise.Evaluation.Metrics;

namespace Excise.Experiment;

/// <summary>What one fine-tuned arm at one seed produced: its training figures and the evaluation of every attack.</summary>
/// <param name="Losses">The training loss at every step (the loss curve of the report).</param>
/// <param name="Attacks">Metrics per attack name (prompt, paraphrase, inversion, baseline-rate).</param>
/// <param name="AttackSeconds">Wall time per attack: sampling, inversion learning and judging.</param>
/// <param name="InversionLosses">The adversary's loss at every inversion step (its convergence curve in the report).</param>
public sealed record ArmSeedOutcome(
    string Arm,
    int SeedIndex,
    long Seed,
    string RunDirectory,
    string EvalDirectory,
    double TrainSeconds,
    double FinalLoss,
    IReadOnlyList<double> Losses,
    double ProjectionShare,
    double? CertificateWorstShare,
    bool? CertificatePassed,
    IReadOnlyDictionary<string, MetricsReport> Attacks,
    IReadOnlyDictionary<string, double> AttackSeconds,
    string Fingerprint,
    IReadOnlyList<double>? InversionLosses = null);

/// <summary>One arm across seeds: the figures of the results table.</summary>
/// <param name="Extraction">Detector firing rate per attack name; "baseline-rate" is how often the logo appears unasked.</param>
/// <param name="Fidelity">Semantic fidelity on the ordinary class prompts (the baseline-rate attack's images).</param>
/// <param name="Fd">Fréchet distance in the garment classifier's feature space, ordinary prompts vs real test images.</param>
/// <param name="Kid">KID in the same space.</param>
/// <param name="ResNetFid">FID with the ImageNet ResNet18 (null when skipped).</param>
/// <param name="InversionGain">Inversion's rate minus its 0-step control's (T − T₀): what the adversary learned, not what the word did.</param>
/// <param name="Lift">The named rate minus the unasked rate (what naming the concept adds), seed by seed.</param>
/// <param name="PixelNearCopies">Share of generated images that are near-copies of a training image (pixel space), ordinary prompts.</param>
public sealed record ArmSummary(
    string Arm,
    IReadOnlyDictionary<string, Estimate> Extraction,
    Estimate? Fidelity,
    Estimate? Fd,
    Estimate? Kid,
    Estimate? ResNetFid,
    Estimate? PixelNearCopies,
    Estimate TrainSeconds,
    Estimate? CertificateWorstShare,
    Estimate? InversionGain = null,
    Estimate? Lift = null);

/// <summary>How the experiment was set up: everything a reader needs to interpret (and reproduce) the numbers.</summary>
/// <param name="ReusedArmRuns">Arm × seed runs served whole from an earlier invocation: the elapsed time does not include them.</param>
/// <param name="BaseShipped">The arms fine-tuned from the base shipped with the project (not one trained here).</param>
/// <param name="BaseSha256">SHA-256 of the base weights every arm started from.</param>
/// <param name="DetectorMasks">How the detector-masked-loss arm's masks were made and how well they match where the logo really is (null: the arm did not run).</param>
/// <param name="ConceptKind">"stripes" for the concept over the whole garment; null for a logo (the default, and every run before kinds existed).</param>
/// <param name="DetectorOffDistribution">The detector's false-positive rate on held-out images unlike any garment (noise, degraded garments): how much garbage it would count as the logo.</param>
public sealed record ExperimentSetup(
    string Preset,
    string Command,
    string Concept,
    string Logo,
    string Dataset,
    string Encoder,
    string BaseRun,
    bool BaseWasCached,
    int BaseSteps,
    double BaseTrainSeconds,
    long ModelParameters,
    int FinetuneSteps,
    int FinetuneBatch,
    double FinetuneLearningRate,
    int FinetuneImages,
    int StampedImages,
    double StampFraction,
    string SubspaceMode,
    int BasisRank,
    double BasisEnergy,
    int ProjectedWeights,
    int Seeds,
    IReadOnlyList<string> Arms,
    IReadOnlyList<string> AttackNames,
    int ImagesPerPrompt,
    int SamplingSteps,
    double GuidanceScale,
    int InversionImages,
    int InversionSteps,
    int ReferenceImages,
    int ResNetImages,
    string ClassifierId,
    double ClassifierAccuracy,
    string DetectorId,
    double DetectorPrecision,
    double DetectorRecall,
    bool QuickJudges,
    bool QualityMeaningful,
    string Machine,
    int Threads,
    Projection.ConceptLeakage? BasisLeakage = null,
    int ArmWorkers = 1,
    int ThreadsPerArm = 0,
    string Sampler = "ddim",
    int ReusedArmRuns = 0,
    bool BaseShipped = false,
    string? BaseSha256 = null,
    IReadOnlyList<Evaluation.Judges.DetectorOffDistributionCondition>? DetectorOffDistribution = null,
    Evaluation.Judges.DetectorMaskReport? DetectorMasks = null,
    string? ConceptKind = null)
{
    /// <summary>What the report calls the concept's look: "logo" (also for results written before kinds existed) or "stripes".</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public string ConceptNoun => ConceptKind is null ? "logo" : ConceptKind;
}

/// <summary>Everything the experiment measured: results.json is this record.</summary>
/// <param name="Reading">Plain-language sentences generated from the figures (see <see cref="ExperimentReading"/>).</param>
public sealed record ExperimentResults(
    ExperimentSetup Setup,
    IReadOnlyList<ArmSummary> Summary,
    IReadOnlyList<ArmSeedOutcome> Runs,
    IReadOnlyList<string> Reading,
    double ElapsedSeconds,
    DateTime CreatedUtc)
{
    public string ToJson() => JsonSerializer.Serialize(this, MetricsReport.JsonOptions);

    public static ExperimentResults FromJson(string json, string source = "results.json")
    {
        try
        {
            return JsonSerializer.Deserialize<ExperimentResults>(json, MetricsReport.JsonOptions)
                ?? throw new InvalidDataException($"{source}: the JSON is null.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: not experiment results: {e.Message}", e);
        }
    }
}
