using Excise.Attacks;
using Excise.Configuration;
using Excise.Data;
using Excise.Projection;
using Excise.Training;

namespace Excise.Experiment;

/// <summary>
/// Everything one run of the selective-learning experiment does: which base to train (or reuse), how to
/// fine-tune each arm, how the concept basis is built, and how hard the adversary and the judges look.
/// Presets fill it in; the CLI's options override single fields.
/// </summary>
/// <param name="BaseConfig">The base model's config file (trained on clean data, cached by hash).</param>
/// <param name="FinetuneConfig">The fine-tuning config file (data.concept says what is injected).</param>
/// <param name="FinetuneOverrides"><c>key=value</c> overrides applied to every arm (the preset's budget, then the user's).</param>
/// <param name="Seeds">Repeats of fine-tuning and evaluation; seed k fine-tunes with config seed + k and attacks with seed k.</param>
/// <param name="ProjectionOverrides"><c>key=value</c> overrides for the projection arms only (e.g. selective.erase_concept=true).</param>
/// <param name="Threads">libtorch threads for the whole experiment (0 = one per core); side-by-side arms share them.</param>
/// <param name="ArmWorkers">Arms fine-tuned and evaluated side by side (<see cref="ArmSchedule"/>).</param>
/// <param name="QualityMeaningful">False for presets whose models are too small or short-trained for FD/KID/fidelity to mean anything.</param>
/// <param name="ShippedBase">
/// A base model shipped with the project (a run directory whose model.safetensors is pinned by its SHA-256): the arms
/// fine-tune from it instead of a base trained here, as users of diffusion fine-tuning start from a released checkpoint.
/// Its recipe must be <see cref="BaseConfig"/>'s. Null (or <c>--train-base</c>): train the base into the cache.
/// </param>
/// <param name="DetectorMasks">
/// How the detector-masked-loss arm's masks are cut from the detector's occlusion saliency (null: the defaults, chosen by
/// mask quality on held-out images). A higher threshold gives worse masks on purpose: what extraction does as they degrade.
/// </param>
public sealed record ExperimentPlan(
    string Preset,
    string BaseConfig,
    IReadOnlyList<string> BaseOverrides,
    string FinetuneConfig,
    IReadOnlyList<string> FinetuneOverrides,
    IReadOnlyList<TrainingArm> Arms,
    int Seeds,
    SubspaceOptions Subspace,
    IReadOnlyList<AttackKind> Attacks,
    AttackSettings Attack,
    int ReferenceImages,
    int ResNetImages,
    int MemorisationTrainImages,
    bool QuickJudges,
    bool QualityMeaningful,
    int Threads = 0,
    IReadOnlyList<string>? ProjectionOverrides = null,
    int ArmWorkers = 1,
    string? ShippedBase = null,
    Evaluation.Judges.LocaliserSettings? DetectorMasks = null)
{
    public static IReadOnlyList<TrainingArm> AllArms { get; } = Enum.GetValues<TrainingArm>();

    public static IReadOnlyList<AttackKind> AllAttacks { get; } =
        [AttackKind.Prompt, AttackKind.Paraphrase, AttackKind.Inversion, AttackKind.InversionControl, AttackKind.BaselineRate];

    public void Validate()
    {
        if (!File.Exists(BaseConfig)) throw new ArgumentException($"base config not found: {BaseConfig}");
        if (!File.Exists(FinetuneConfig)) throw new ArgumentException($"fine-tuning config not found: {FinetuneConfig}");
        if (Arms.Count == 0) throw new ArgumentException("No arms to run: give at least one (e.g. --arms standard,update-projection).");
        if (Arms.Distinct().Count() != Arms.Count) throw new ArgumentException("An arm is listed twice.");
        if (Seeds < 1) throw new ArgumentException($"seeds must be ≥ 1 (got {Seeds}).");
        if (Attacks.Count == 0) throw new ArgumentException("No attacks to run.");
        if (!Attacks.Contains(AttackKind.BaselineRate))
            throw new ArgumentException("The baseline-rate attack is required: its ordinary prompts are what the quality and fidelity figures are measured on.");
        if (ReferenceImages < 2) throw new ArgumentException($"reference images must be ≥ 2 (got {ReferenceImages}).");
        if (ResNetImages < 0) throw new ArgumentException($"ResNet images must be ≥ 0 (got {ResNetImages}).");
        if (Threads < 0) throw new ArgumentException($"threads must be ≥ 0 (got {Threads}).");
        if (ArmWorkers < 1) throw new ArgumentException($"arm workers must be ≥ 1 (got {ArmWorkers}).");
        Subspace.Validate(Text.MiniLmTextEncoder.Width);
        DetectorMasks?.Validate();
        foreach (var kind in Attacks) (Attack with { Kind = kind }).Validate();
    }

    /// <summary>The stripes concept's name when none is given: "pattern" makes its paraphrases a print's, "Zebra" is its brand.</summary>
    public const string StripesPhrase = "the Zebra pattern";

    /// <summary>
    /// The experiment on a concept of this kind, named by <paramref name="phrase"/> when given. Stripes over the garment
    /// are named as a pattern, and the inversion adversary starts from the concept's own generic noun ("pattern"), as it
    /// starts from "logo" for a logo.
    /// </summary>
    public ExperimentPlan WithConcept(ConceptKind kind, string? phrase)
    {
        var overrides = FinetuneOverrides.ToList();
        var plan = this;
        if (kind == ConceptKind.Stripes)
        {
            overrides.Add($"data.concept.kind={kind.ToName()}");
            phrase ??= StripesPhrase;
            plan = plan with { Attack = Attack with { Inversion = Attack.InversionOrDefault with { PlaceholderWord = "pattern" } } };
        }
        if (phrase is not null) overrides.Add($"data.concept.phrase={phrase}");
        return plan with { FinetuneOverrides = overrides };
    }

    /// <summary>The user's own logo (SVG or PNG) stamped instead of the built-in one.</summary>
    public ExperimentPlan WithLogo(string logoFile) =>
        File.Exists(logoFile) ? this with { FinetuneOverrides = [.. FinetuneOverrides, $"data.concept.logo={Path.GetFullPath(logoFile)}"] }
            : throw new FileNotFoundException($"Logo file not found: {logoFile}", logoFile);

    /// <summary>The user's imagefolder (images plus metadata.jsonl with captions) in place of Fashion-MNIST, for the base and every arm.</summary>
    public ExperimentPlan WithImageFolder(string directory)
    {
        if (!Directory.Exists(directory))
            throw new DirectoryNotFoundException($"No dataset directory at {directory} (an imagefolder: images plus metadata.jsonl with captions).");
        string[] data = ["data.source=imagefolder", $"data.path={Path.GetFullPath(directory)}"];
        return this with { BaseOverrides = [.. BaseOverrides, .. data], FinetuneOverrides = [.. FinetuneOverrides, .. data] };
    }
}

/// <summary>The named budgets of <c>excise demo --preset</c>.</summary>
public static class ExperimentPresets
{
    public const string Quick = "quick", Default = "default", Full = "full";
    public static IReadOnlyList<string> Names { get; } = [Quick, Default, Full];

    /// <summary>
    /// The default preset's arms. Each arm costs about 3½ minutes here (a 120-step fine-tune, then five attacks), so 20
    /// minutes hold four besides the floor: the undefended model every verdict is read against, the paper's method, the
    /// defence that keeps every image (its loss ignores the logo's pixels) and the one a user would try first (drop the
    /// stamped images). The other arms — our exact projection, its masked combination, the caption and embedding
    /// baselines — run in <c>full</c>.
    /// </summary>
    public static IReadOnlyList<TrainingArm> DefaultArms { get; } =
        [TrainingArm.Standard, TrainingArm.GradientProjection, TrainingArm.MaskedLoss, TrainingArm.FilterImages];

    /// <summary>The project's shipped base, beside configs/: models/base (a run directory with pinned weights).</summary>
    public static string ShippedBaseDirectory(string configsDirectory) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(configsDirectory).TrimEnd(Path.DirectorySeparatorChar))!, "models", "base");

    /// <param name="configsDirectory">Where smoke.json, base.json and finetune.json live (models/ is beside it).</param>
    public static ExperimentPlan Get(string name, string configsDirectory)
    {
        string Config(string file) => Path.Combine(configsDirectory, file + ".json");
        string shipped = ShippedBaseDirectory(configsDirectory);
        var subspace = new SubspaceOptions(SubspaceMode.ConceptTokens, Energy: 0.99);
        return name switch
        {
            // Minutes, for CI and a first look: a smoke-sized base, a few steps per arm, one image per prompt.
            Quick => new ExperimentPlan(Quick,
                Config("smoke"), ["training.steps=40", "training.checkpoint_every=0", "preview.per_prompt=0"],
                Config("finetune"), ["data.limit=512", "training.steps=12", "training.batch_size=16", "training.warmup_steps=4",
                                     "training.checkpoint_every=0", "training.log_every=4", "preview.per_prompt=0"],
                ExperimentPlan.AllArms, Seeds: 1, subspace, ExperimentPlan.AllAttacks,
                new AttackSettings(AttackKind.Prompt, ImagesPerPrompt: 1, SamplingSteps: 8, BatchSize: 64,
                    Inversion: new InversionSettings(Images: 4, Steps: 4, BatchSize: 4, EvaluationDraws: 1)),
                ReferenceImages: 200, ResNetImages: 0, MemorisationTrainImages: 512, QuickJudges: true, QualityMeaningful: false),
            // The README's main job: the shipped base model, short fine-tunes (a higher learning rate so 120 steps learn
            // the logo), two images per prompt, and the arms that answer the main question within 20 minutes (DefaultArms).
            Default => new ExperimentPlan(Default,
                Config("base"), [],
                Config("finetune"), ["training.steps=120", "training.learning_rate=0.001", "training.warmup_steps=20",
                                     "training.checkpoint_every=40", "training.log_every=5", "preview.per_prompt=0"],
                DefaultArms, Seeds: 1, subspace, ExperimentPlan.AllAttacks,
                new AttackSettings(AttackKind.Prompt, ImagesPerPrompt: 2, SamplingSteps: 20, BatchSize: 64,
                    // A determined adversary: four vectors, a high rate, learning where the logo is decided.
                    Inversion: new InversionSettings(Images: 16, Steps: 150, LearningRate: 0.03, Vectors: 4, BatchSize: 8, EvaluationDraws: 2,
                                                     TimestepLow: 0.3, TimestepHigh: 0.9)),
                ReferenceImages: 1000, ResNetImages: 100, MemorisationTrainImages: 0, QuickJudges: false, QualityMeaningful: true,
                ShippedBase: shipped),
            // The published numbers: the default's fine-tunes at three seeds, judged on twice the images per prompt and
            // twice the reference images. Seed 0 fine-tunes exactly as the default preset does.
            Full => new ExperimentPlan(Full,
                Config("base"), [],
                Config("finetune"), ["training.steps=120", "training.learning_rate=0.001", "training.warmup_steps=20",
                                     "training.checkpoint_every=40", "training.log_every=5", "preview.per_prompt=0"],
                ExperimentPlan.AllArms, Seeds: 3, subspace, ExperimentPlan.AllAttacks,
                new AttackSettings(AttackKind.Prompt, ImagesPerPrompt: 4, SamplingSteps: 20, BatchSize: 64,
                    Inversion: new InversionSettings(Images: 16, Steps: 150, LearningRate: 0.03, Vectors: 4, BatchSize: 8, EvaluationDraws: 2,
                                                     TimestepLow: 0.3, TimestepHigh: 0.9)),
                ReferenceImages: 2000, ResNetImages: 400, MemorisationTrainImages: 0, QuickJudges: false, QualityMeaningful: true,
                ShippedBase: shipped),
            _ => throw new ArgumentException($"preset must be one of {string.Join(", ", Names)} (got '{name}')."),
        };
    }
}
