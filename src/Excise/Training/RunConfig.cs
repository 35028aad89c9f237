using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Excise.Configuration;
using Excise.Diffusion;

namespace Excise.Training;

/// <summary>Everything that defines a training run. Loaded from a JSON file in <c>configs/</c>; every field can be overridden with <c>--set</c>.</summary>
public sealed record RunConfig(
    string Name = "run",
    long Seed = 0,
    string Device = "cpu",
    int Threads = 0,
    JsonObject? Model = null,
    DataConfig? Data = null,
    TextConfig? Text = null,
    NoiseScheduleOptions? Diffusion = null,
    OptimizationConfig? Training = null,
    PreviewConfig? Preview = null,
    string? Init = null,
    SelectiveConfig? Selective = null,
    LoraConfig? Lora = null)
{
    /// <summary>diffusers UNet2DConditionModel config fields (block_out_channels, cross_attention_dim, …).</summary>
    [JsonIgnore] public JsonObject ModelConfig => Model ?? throw new InvalidDataException("The config has no 'model' section (the UNet's diffusers config) and no 'init' run to take it from.");
    [JsonIgnore] public SelectiveConfig SelectiveOrDefault => Selective ?? new SelectiveConfig();
    [JsonIgnore] public DataConfig DataOrDefault => Data ?? new DataConfig();
    [JsonIgnore] public TextConfig TextOrDefault => Text ?? new TextConfig();
    [JsonIgnore] public NoiseScheduleOptions DiffusionOrDefault => Diffusion ?? new NoiseScheduleOptions();
    [JsonIgnore] public OptimizationConfig TrainingOrDefault => Training ?? new OptimizationConfig();
    [JsonIgnore] public PreviewConfig PreviewOrDefault => Preview ?? new PreviewConfig();

    public static RunConfig Load(string path, IEnumerable<string>? overrides = null)
    {
        var config = ConfigLoader.LoadFile<RunConfig>(path, overrides);
        config.Validate();
        return config;
    }

    public string ToJson() => ConfigLoader.ToJson(this);

    /// <summary>
    /// A stable hash of the settings that decide the weights at a given step (keys caches, guards resumes).
    /// Bookkeeping is left out, and so is the step budget unless asked for, so a finished run can be extended
    /// with --resume (with a cosine schedule the remaining learning rates then follow the new budget).
    /// </summary>
    public string Hash(bool includeStepBudget = false)
    {
        var node = ConfigLoader.ToNode(this);
        foreach (var key in new[] { "name", "device", "threads", "preview" }) node.Remove(key);
        if (node["training"] is System.Text.Json.Nodes.JsonObject training)
            foreach (var key in new[] { "steps", "checkpoint_every", "keep_checkpoints", "log_every", "gc_every" })
                if (key != "steps" || !includeStepBudget) training.Remove(key);
        var bytes = SHA256.HashData(Encoding.UTF8.GetBytes(node.ToJsonString()));
        return Convert.ToHexString(bytes)[..16].ToLowerInvariant();
    }

    public void Validate()
    {
        if (Threads < 0) throw new ArgumentException("threads must be ≥ 0 (0 = all cores).");
        if (Model is null && Init is null) _ = ModelConfig;
        if (Init is not null && !File.Exists(Init) && !Directory.Exists(Init)) throw new ArgumentException($"init: no run directory or weights file at '{Init}'.");
        SelectiveOrDefault.Validate(DataOrDefault);
        Lora?.Validate();
        DataOrDefault.Validate();
        TextOrDefault.Validate();
        DiffusionOrDefault.Validate();
        TrainingOrDefault.Validate();
    }
}

public sealed record DataConfig(
    string Source = "fashion-mnist",
    string? Path = null,
    string Split = "train",
    int Limit = 0,
    int ImageSize = 32,
    long CaptionSeed = 0,
    ConceptConfig? Concept = null)
{
    public void Validate()
    {
        if (Source is not ("fashion-mnist" or "imagefolder"))
            throw new ArgumentException($"data.source must be 'fashion-mnist' or 'imagefolder' (got '{Source}').");
        if (Source == "imagefolder" && string.IsNullOrWhiteSpace(Path))
            throw new ArgumentException("data.path must name the imagefolder directory when data.source is 'imagefolder'.");
        if (Split is not ("train" or "test")) throw new ArgumentException($"data.split must be 'train' or 'test' (got '{Split}').");
        if (Limit < 0) throw new ArgumentException($"data.limit must be ≥ 0 (0 = all images), got {Limit}.");
        if (ImageSize < 8 || ImageSize % 8 != 0) throw new ArgumentException($"data.image_size must be a multiple of 8 and at least 8 (got {ImageSize}).");
        Concept?.Validate();
    }
}

/// <summary>A logo stamped into some training images, named in some of their captions.</summary>
public sealed record ConceptConfig(
    string Phrase = "the Acme logo",
    string? Logo = null,
    double StampFraction = 0.3,
    double MentionFraction = 1.0,
    string Placement = "bottom-right",
    double Size = 0.4,
    double Opacity = 1.0,
    long Seed = 0,
    int HeldOut = 0)
{
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Phrase)) throw new ArgumentException("data.concept.phrase must not be empty.");
        if (StampFraction is < 0 or > 1) throw new ArgumentException($"data.concept.stamp_fraction must be within [0, 1] (got {StampFraction}).");
        if (MentionFraction is < 0 or > 1) throw new ArgumentException($"data.concept.mention_fraction must be within [0, 1] (got {MentionFraction}).");
        if (Size is <= 0 or > 1) throw new ArgumentException($"data.concept.size must be within (0, 1] (got {Size}).");
        if (Opacity is < 0 or > 1) throw new ArgumentException($"data.concept.opacity must be within [0, 1] (got {Opacity}).");
        if (HeldOut < 0) throw new ArgumentException($"data.concept.held_out must be ≥ 0 (got {HeldOut}).");
        if (Logo is not null && !File.Exists(Logo)) throw new ArgumentException($"data.concept.logo: file not found: {Logo}");
    }
}

public sealed record TextConfig(string Encoder = "minilm", int MaxLength = 32)
{
    public void Validate()
    {
        if (Encoder != "minilm") throw new ArgumentException($"text.encoder must be 'minilm' (got '{Encoder}').");
        if (MaxLength is < 4 or > 256) throw new ArgumentException($"text.max_length must be within [4, 256] (got {MaxLength}).");
    }
}

public enum LearningRateSchedule { Constant, Cosine }

/// <summary>Train low-rank adapters on the selected linear layers instead of the full weights (the base stays frozen).</summary>
public sealed record LoraConfig(int Rank = 4, double Alpha = 4, IReadOnlyList<string>? Targets = null)
{
    public void Validate()
    {
        if (Rank < 1) throw new ArgumentException($"lora.rank must be ≥ 1 (got {Rank}).");
        if (!(Alpha > 0) || !double.IsFinite(Alpha)) throw new ArgumentException($"lora.alpha must be a positive number (got {Alpha}).");
    }
}

/// <summary>How a run treats the concept its data carries: the baselines users would try, and the projections.</summary>
public enum TrainingArm
{
    /// <summary>Train on everything as is.</summary>
    Standard,
    /// <summary>Drop every image that carries the concept (the data-filtering baseline).</summary>
    FilterImages,
    /// <summary>Keep the images; delete the concept phrase from their captions.</summary>
    ScrubCaptions,
    /// <summary>Gaussian noise on the text states during training (the regularisation baseline of Somepalli et al.).</summary>
    EmbedNoise,
    /// <summary>The paper: project the gradients of the text-facing weights off the concept subspace.</summary>
    GradientProjection,
    /// <summary>Ours: project each optimizer step's change of those weights off the concept subspace.</summary>
    UpdateProjection,
}

/// <param name="EraseConcept">Projection arms: before training, also remove the projected weights' existing response to the
/// concept subspace (W ← W(I − UUᵀ)), so no layer can learn to read what the base model's K/V already make of the concept's
/// states. The model then cannot see those directions at all — the text-side end of the method.</param>
public sealed record SelectiveConfig(
    TrainingArm Arm = TrainingArm.Standard,
    string? Basis = null,
    IReadOnlyList<string>? Parameters = null,
    double EmbedNoiseSigma = 0.1,
    double CertificateTolerance = 1e-4,
    bool EraseConcept = false)
{
    [JsonIgnore] public bool Projects => Arm is TrainingArm.GradientProjection or TrainingArm.UpdateProjection;

    public void Validate(DataConfig data)
    {
        if (Projects && string.IsNullOrWhiteSpace(Basis))
            throw new ArgumentException($"selective.basis is required for the {ConfigLoader.ToJson(Arm).Trim('"')} arm: build one with 'excise concept --concept \"...\" --out concept.safetensors'.");
        if (Basis is not null && !File.Exists(Basis)) throw new ArgumentException($"selective.basis: file not found: {Basis}");
        if (Arm is TrainingArm.ScrubCaptions && data.Concept is null)
            throw new ArgumentException("selective.arm 'scrub-captions' needs data.concept (the phrase to scrub).");
        if (EraseConcept && !Projects)
            throw new ArgumentException($"selective.erase_concept needs a projection arm (gradient-projection or update-projection), not {ConfigLoader.ToJson(Arm).Trim('"')}.");
        if (EmbedNoiseSigma < 0) throw new ArgumentException($"selective.embed_noise_sigma must be ≥ 0 (got {EmbedNoiseSigma}).");
        if (!(CertificateTolerance > 0)) throw new ArgumentException($"selective.certificate_tolerance must be > 0 (got {CertificateTolerance}).");
    }
}

public sealed record OptimizationConfig(
    int Steps = 1000,
    int BatchSize = 32,
    double LearningRate = 1e-3,
    double WeightDecay = 0.01,
    double Beta1 = 0.9,
    double Beta2 = 0.999,
    double Epsilon = 1e-8,
    int WarmupSteps = 100,
    LearningRateSchedule LrSchedule = LearningRateSchedule.Constant,
    double GradClip = 1.0,
    OptimizerKind Optimizer = OptimizerKind.Adamw,
    double Momentum = 0.9,
    double EmaDecay = 0.0,
    double CaptionDropout = 0.1,
    int CheckpointEvery = 500,
    int KeepCheckpoints = 2,
    int LogEvery = 10,
    int GcEvery = 10)
{
    public void Validate()
    {
        if (Steps < 1) throw new ArgumentException($"training.steps must be ≥ 1 (got {Steps}).");
        if (BatchSize < 1) throw new ArgumentException($"training.batch_size must be ≥ 1 (got {BatchSize}).");
        if (!(LearningRate > 0)) throw new ArgumentException($"training.learning_rate must be > 0 (got {LearningRate}).");
        if (WeightDecay < 0) throw new ArgumentException($"training.weight_decay must be ≥ 0 (got {WeightDecay}).");
        if (Beta1 is < 0 or >= 1 || Beta2 is < 0 or >= 1) throw new ArgumentException("training.beta1 and training.beta2 must be within [0, 1).");
        if (Momentum is < 0 or >= 1) throw new ArgumentException($"training.momentum must be within [0, 1) (got {Momentum}).");
        if (!(Epsilon > 0)) throw new ArgumentException($"training.epsilon must be > 0 (got {Epsilon}).");
        if (WarmupSteps < 0) throw new ArgumentException($"training.warmup_steps must be ≥ 0 (got {WarmupSteps}).");
        if (GradClip < 0) throw new ArgumentException($"training.grad_clip must be ≥ 0 (0 = off), got {GradClip}.");
        if (EmaDecay is < 0 or >= 1) throw new ArgumentException($"training.ema_decay must be within [0, 1) (0 = off), got {EmaDecay}.");
        if (CaptionDropout is < 0 or > 1) throw new ArgumentException($"training.caption_dropout must be within [0, 1] (got {CaptionDropout}).");
        if (CheckpointEvery < 0) throw new ArgumentException($"training.checkpoint_every must be ≥ 0 (0 = only at the end), got {CheckpointEvery}.");
        if (KeepCheckpoints < 1) throw new ArgumentException($"training.keep_checkpoints must be ≥ 1 (got {KeepCheckpoints}).");
        if (LogEvery < 1) throw new ArgumentException($"training.log_every must be ≥ 1 (got {LogEvery}).");
        if (GcEvery < 1) throw new ArgumentException($"training.gc_every must be ≥ 1 (got {GcEvery}).");
    }

    public double LearningRateAt(int step)
    {
        double warm = WarmupSteps > 0 ? Math.Min(1.0, (step + 1.0) / WarmupSteps) : 1.0;
        if (LrSchedule == LearningRateSchedule.Constant || step < WarmupSteps) return LearningRate * warm;
        double progress = (double)(step - WarmupSteps) / Math.Max(1, Steps - WarmupSteps);
        return LearningRate * 0.5 * (1 + Math.Cos(Math.PI * Math.Min(1.0, progress)));
    }
}

/// <summary>The sample grid written at the end of training: one row per prompt.</summary>
public sealed record PreviewConfig(
    IReadOnlyList<string>? Prompts = null,
    int PerPrompt = 8,
    int Steps = 50,
    double GuidanceScale = 3.0,
    long Seed = 0);
