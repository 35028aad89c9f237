using System.Text.Json;
using System.Text.Json.Nodes;
using Excise.Evaluation.Metrics;
using Excise.Serialization;

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

/// <summary>
/// How the experiment was set up: everything a reader needs to interpret (and reproduce) the numbers, in the order
/// the data flows — what ran, the concept and data, the base, the fine-tune, the basis, the attacks, the judges.
/// </summary>
public sealed record ExperimentSetup(
    ExecutionSetup Execution,
    ConceptSetup Concept,
    BaseSetup Base,
    FinetuneSetup Finetune,
    BasisSetup Basis,
    AttackSetup Attacks,
    JudgeSetup Judges)
{
    /// <summary>What the report calls the concept's look: "logo" (also for results written before kinds existed) or "stripes".</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public string ConceptNoun => Concept.Kind is null ? "logo" : Concept.Kind;
}

/// <summary>What ran, where and how: the preset, the command, the arms × seeds and the machine's threads.</summary>
/// <param name="ReusedArmRuns">Arm × seed runs served whole from an earlier invocation: the elapsed time does not include them.</param>
/// <param name="Ranks">The processes the arm runs were fanned out over (<c>mpirun -np N excise demo</c>); 1 without mpirun.</param>
public sealed record ExecutionSetup(
    string Preset,
    string Command,
    IReadOnlyList<string> Arms,
    int Seeds,
    string Machine,
    int Threads,
    int ArmWorkers = 1,
    int ThreadsPerArm = 0,
    int ReusedArmRuns = 0,
    int Ranks = 1);

/// <summary>The concept and the data it is stamped into.</summary>
/// <param name="Phrase">The concept's name in captions and attacks ("the Acme logo").</param>
/// <param name="Kind">"stripes" for the concept over the whole garment; null for a logo (the default, and every run before kinds existed).</param>
/// <param name="Look">What is drawn: the logo's file, the built-in logo, or the stripes.</param>
public sealed record ConceptSetup(
    string Phrase,
    string? Kind,
    string Look,
    string Dataset,
    int FinetuneImages,
    int StampedImages,
    double StampFraction);

/// <summary>The base model every arm fine-tunes from.</summary>
/// <param name="Shipped">The arms fine-tuned from the base shipped with the project (not one trained here).</param>
/// <param name="Sha256">SHA-256 of the base weights every arm started from.</param>
public sealed record BaseSetup(
    string Run,
    bool WasCached,
    int Steps,
    double TrainSeconds,
    long ModelParameters,
    string Encoder,
    bool Shipped = false,
    string? Sha256 = null);

/// <summary>Every arm's fine-tuning budget.</summary>
public sealed record FinetuneSetup(int Steps, int Batch, double LearningRate);

/// <summary>The projection arms' concept basis and how much of the concept lies outside it.</summary>
public sealed record BasisSetup(
    string SubspaceMode,
    int Rank,
    double Energy,
    int ProjectedWeights,
    Projection.ConceptLeakage? Leakage = null);

/// <summary>The adversary: which attacks, how many images, and how they are sampled.</summary>
public sealed record AttackSetup(
    IReadOnlyList<string> Names,
    int ImagesPerPrompt,
    int SamplingSteps,
    double GuidanceScale,
    string Sampler,
    int InversionImages,
    int InversionSteps);

/// <summary>The judges and the real images quality is measured against.</summary>
/// <param name="DetectorOffDistribution">The detector's false-positive rate on held-out images unlike any garment (noise, degraded garments): how much garbage it would count as the concept.</param>
/// <param name="DetectorMasks">How the detector-masked-loss arm's masks were made and how well they match where the concept really is (null: the arm did not run).</param>
public sealed record JudgeSetup(
    int ReferenceImages,
    int ResNetImages,
    string ClassifierId,
    double ClassifierAccuracy,
    string DetectorId,
    double DetectorPrecision,
    double DetectorRecall,
    bool Quick,
    bool QualityMeaningful,
    IReadOnlyList<Evaluation.Judges.DetectorOffDistributionCondition>? DetectorOffDistribution = null,
    Evaluation.Judges.DetectorMaskReport? DetectorMasks = null);

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
    public string ToJson() => JsonSerializer.Serialize(this, RecordJson.Options);

    /// <summary>Reads results.json, including those written before the setup was grouped (a flat "setup", up to 2026-12-06).</summary>
    public static ExperimentResults FromJson(string json, string source = "results.json")
    {
        try
        {
            var node = JsonNode.Parse(json) ?? throw new InvalidDataException($"{source}: the JSON is null.");
            if (node["setup"] is JsonObject setup && setup["execution"] is null && setup["preset"] is not null)
                node["setup"] = GroupFlatSetup(setup);
            return node.Deserialize<ExperimentResults>(RecordJson.Options)
                ?? throw new InvalidDataException($"{source}: the JSON is null.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: not experiment results: {e.Message}", e);
        }
    }

    /// <summary>Each group's keys as the flat setup spelled them (group key ← flat key).</summary>
    static readonly (string Group, (string Key, string Flat)[] Fields)[] FlatSetupKeys =
    [
        ("execution", [("preset", "preset"), ("command", "command"), ("arms", "arms"), ("seeds", "seeds"), ("machine", "machine"),
                       ("threads", "threads"), ("arm_workers", "arm_workers"), ("threads_per_arm", "threads_per_arm"), ("reused_arm_runs", "reused_arm_runs")]),
        ("concept", [("phrase", "concept"), ("kind", "concept_kind"), ("look", "logo"), ("dataset", "dataset"), ("finetune_images", "finetune_images"),
                     ("stamped_images", "stamped_images"), ("stamp_fraction", "stamp_fraction")]),
        ("base", [("run", "base_run"), ("was_cached", "base_was_cached"), ("steps", "base_steps"), ("train_seconds", "base_train_seconds"),
                  ("model_parameters", "model_parameters"), ("encoder", "encoder"), ("shipped", "base_shipped"), ("sha256", "base_sha256")]),
        ("finetune", [("steps", "finetune_steps"), ("batch", "finetune_batch"), ("learning_rate", "finetune_learning_rate")]),
        ("basis", [("subspace_mode", "subspace_mode"), ("rank", "basis_rank"), ("energy", "basis_energy"), ("projected_weights", "projected_weights"),
                   ("leakage", "basis_leakage")]),
        ("attacks", [("names", "attack_names"), ("images_per_prompt", "images_per_prompt"), ("sampling_steps", "sampling_steps"),
                     ("guidance_scale", "guidance_scale"), ("sampler", "sampler"), ("inversion_images", "inversion_images"), ("inversion_steps", "inversion_steps")]),
        ("judges", [("reference_images", "reference_images"), ("res_net_images", "res_net_images"), ("classifier_id", "classifier_id"),
                    ("classifier_accuracy", "classifier_accuracy"), ("detector_id", "detector_id"), ("detector_precision", "detector_precision"),
                    ("detector_recall", "detector_recall"), ("quick", "quick_judges"), ("quality_meaningful", "quality_meaningful"),
                    ("detector_off_distribution", "detector_off_distribution"), ("detector_masks", "detector_masks")]),
    ];

    static JsonObject GroupFlatSetup(JsonObject flat)
    {
        var grouped = new JsonObject();
        foreach (var (group, fields) in FlatSetupKeys)
        {
            var part = new JsonObject();
            foreach (var (key, flatKey) in fields)
                if (flat[flatKey] is { } value) part[key] = value.DeepClone();
            grouped[group] = part;
        }
        // Results written before the sampler was recorded were all sampled with DDIM.
        if (grouped["attacks"]!["sampler"] is null) grouped["attacks"]!["sampler"] = "ddim";
        return grouped;
    }
}
