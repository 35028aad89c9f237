using System.Text;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Excise.Configuration;
using Excise.Data;
using Excise.Diffusion;
using Excise.Models;
using Excise.Models.Lora;
using Excise.Pipelines;
using Excise.Projection;
using Excise.Serialization;
using Excise.Text;
using Excise.Torch;

namespace Excise.Training;

/// <summary>Everything that defines a training run. Loaded from a JSON file in <c>configs/</c>; every field can be overridden with <c>--set</c>.</summary>
/// <param name="InitSha256">
/// The SHA-256 of the weights <see cref="Init"/> points at. Training fills it in from the file it starts from and writes it
/// to the run's config.json, so every fine-tune records which base it came from (a shipped base's pinned hash, or a
/// trained run's); given, a different file at that path is refused.
/// </param>
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
    string? InitSha256 = null,
    SelectiveConfig? Selective = null,
    LoraConfig? Lora = null,
    string? Pipeline = null,
    string? PipelineSha256 = null)
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

    /// <summary>A config from settings alone (KEY=VALUE, as --set gives them) on top of the defaults, validated.</summary>
    public static RunConfig FromSettings(IEnumerable<string> settings)
    {
        var config = ConfigLoader.FromNode<RunConfig>(new JsonObject(), settings, "the command line");
        config.Validate();
        return config;
    }

    public string ToJson() => ConfigLoader.ToJson(this);

    /// <summary>
    /// A stable hash of the settings that decide the weights at a given step (keys caches, guards resumes).
    /// Bookkeeping is left out, and so is the step budget unless asked for, so a finished run can be extended
    /// with --resume (with a cosine schedule the remaining learning rates then follow the new budget).
    /// The concept basis is left out too: where its file lies says nothing about what it holds. A run trains with its
    /// own copy of the basis (resumes included); whoever reuses a finished run compares that copy's content.
    /// </summary>
    public string Hash(bool includeStepBudget = false)
    {
        var node = ConfigLoader.ToNode(this);
        foreach (var key in new[] { "name", "device", "threads", "preview" }) node.Remove(key);
        // Pinned, the base's content says which base it is and its path does not: a fine-tune keeps its hash (and can be
        // resumed or reused by the experiment) when the repository or the cache moves. Unset, it adds nothing the init path
        // does not say, and leaving it out keeps the hashes of runs made before it existed.
        if (node["init_sha256"] is null) node.Remove("init_sha256");
        else node.Remove("init");
        // The same for a pipeline folder; unset, both keys stay out so runs made before pipelines keep their hashes.
        if (node["pipeline_sha256"] is null) node.Remove("pipeline_sha256");
        else node.Remove("pipeline");
        if (node["pipeline"] is null) node.Remove("pipeline");
        if (node["selective"] is System.Text.Json.Nodes.JsonObject selective)
        {
            // Where a basis or a mask folder lies says nothing about what it holds; a mask folder's content hash stays in.
            // (An unset basis stays in as null, and unset mask keys are dropped: the hashes of existing runs do not move.)
            if (selective["basis"] is not null) selective.Remove("basis");
            selective.Remove("mask_folder");
            if (selective["mask_folder_sha256"] is null) selective.Remove("mask_folder_sha256");
            // The phrase a pipeline run builds its basis from decides the weights; unset, it stays out (older hashes).
            if (selective["concept"] is null) selective.Remove("concept");
        }
        if (node["data"] is System.Text.Json.Nodes.JsonObject data)
            foreach (var key in DataConfig.ImageOptionKeys)
                if (data[key]?.GetValue<bool>() == false) data.Remove(key);
        // A logo (the default kind, named or not) leaves the kind out, so runs made before stripes existed keep their hashes.
        if (node["data"]?["concept"] is System.Text.Json.Nodes.JsonObject concept && DataOrDefault.Concept?.KindValue == ConceptKind.Logo) concept.Remove("kind");
        // Epsilon prediction, the only kind before Stable Diffusion pipelines, stays out so existing runs keep their hashes.
        if (node["diffusion"] is System.Text.Json.Nodes.JsonObject diffusion && DiffusionOrDefault.PredictionType == PredictionType.Epsilon) diffusion.Remove("prediction_type");
        if (node["training"] is System.Text.Json.Nodes.JsonObject training)
            // on_nonfinite and max_consecutive_skips change nothing until a step diverges, and a run stopped by a NaN
            // must be resumable with on_nonfinite = skip; leaving them out also keeps the hashes of existing runs.
            // gradient_checkpointing trades memory for time, like threads: the same training up to rounding.
            foreach (var key in new[] { "steps", "checkpoint_every", "keep_checkpoints", "log_every", "gc_every", "on_nonfinite", "max_consecutive_skips",
                                        "gradient_checkpointing" })
                if (key != "steps" || !includeStepBudget) training.Remove(key);
        return Digest.Short(node.ToJsonString());
    }

    /// <summary>More intra-op threads than this is a typo, and libtorch would try to start them all.</summary>
    public const int MaxThreads = 1024;

    /// <summary>
    /// Refuses a config before any work starts: every value in range (NaN and infinities included, which JSON configs
    /// can spell "NaN" and "Infinity"), every referenced file present, and the sections consistent with each other —
    /// the UNet with the data and the text encoder, LoRA's rank with the layers it adapts, the arm with its basis.
    /// Malformed files it reads throw <see cref="InvalidDataException"/>; every other problem <see cref="ArgumentException"/>
    /// naming the key.
    /// </summary>
    public void Validate()
    {
        if (Threads is < 0 or > MaxThreads) throw new ArgumentException($"threads must be within [0, {MaxThreads}] (0 = all cores), got {Threads}.");
        try { TorchRuntime.ParseDevice(Device); }
        catch (ArgumentException e) { throw new ArgumentException($"device: {e.Message}", e); }
        if (Init is not null && !File.Exists(Init) && !Directory.Exists(Init)) throw new ArgumentException($"init: no run directory or weights file at '{Init}'.");
        DataOrDefault.Validate();
        DiffusionOrDefault.Validate();
        TrainingOrDefault.Validate();
        PreviewOrDefault.Validate();
        if (Pipeline is not null)
        {
            ValidatePipelineRun();
            return;
        }
        TextOrDefault.Validate();
        Lora?.Validate();
        var unet = ResolveUNetConfig();
        ValidateModelFits(unet);
        // Only the header: a pickle, a truncated or a corrupt file is refused now, not after the data is prepared.
        if (InitWeightsPath() is { } initWeights)
        {
            SafetensorsFile.ReadHeader(initWeights);
            if (InitSha256 is not null && Digest.Sha256(initWeights) is var digest && digest != InitSha256.ToLowerInvariant())
                throw new ArgumentException($"init_sha256: {initWeights} has SHA-256 {digest}, not the {InitSha256} this run started from; " +
                                            "the base changed since. Start a new run from it (another --out), or restore the base it was trained from.");
        }
        else if (InitSha256 is not null) throw new ArgumentException("init_sha256 names the weights a run started from, but the config has no init.");
        if (PipelineSha256 is not null) throw new ArgumentException("pipeline_sha256 pins the pipeline folder a run trains on, but the config has no pipeline.");
        SelectiveOrDefault.Validate(DataOrDefault, Lora, TextOrDefault.Width, () => TextOrDefault.EncoderId,
            $"Rebuild the basis with 'excise concept --max-length {TextOrDefault.MaxLength} ...', or set text.max_length to the one it was built with.");
    }

    /// <summary>The pipeline folder a pipeline run trains on (configs read and checked, no weights loaded); null for other runs.</summary>
    public StableDiffusionPipelineFolder? OpenPipelineFolder()
    {
        if (Pipeline is null) return null;
        try { return StableDiffusionPipelineFolder.Open(Pipeline); }
        catch (Exception e) when (e is InvalidDataException or NotSupportedException or DirectoryNotFoundException)
        {
            throw new ArgumentException($"pipeline: {e.Message}", e);
        }
    }

    /// <summary>
    /// A pipeline run takes its UNet, text encoder and noise schedule from the folder, so keys that would set them too are
    /// refused by name rather than one of the two silently ignored; so is what latent training cannot do faithfully yet.
    /// </summary>
    void ValidatePipelineRun()
    {
        var conflicting = new List<string>();
        if (Model is not null) conflicting.Add("model (the UNet comes from the pipeline's unet/)");
        if (Init is not null || InitSha256 is not null) conflicting.Add("init (the weights training starts from are the pipeline's UNet)");
        if (Text is not null) conflicting.Add("text (the text encoder is the pipeline's CLIP text_encoder/)");
        if (conflicting.Count > 0)
            throw new ArgumentException($"pipeline: this run trains the pipeline at '{Pipeline}'; drop {string.Join(", ", conflicting)}.");
        var pipeline = OpenPipelineFolder()!;
        // A resumed run's config holds the pipeline's own schedule, which training wrote there; any other is a conflict.
        if (Diffusion is not null && Diffusion != pipeline.NoiseSchedule)
            throw new ArgumentException($"diffusion: the pipeline's scheduler ({System.IO.Path.Combine(pipeline.Path, StableDiffusionPipelineFolder.SchedulerFolder)}) " +
                                        $"sets the noise schedule ({pipeline.NoiseSchedule}); drop the diffusion keys.");
        var data = DataOrDefault;
        if (data.ImageSize != pipeline.PixelSize)
            throw new ArgumentException($"data.image_size ({data.ImageSize}) must be {pipeline.PixelSize} for this pipeline: its UNet's sample_size " +
                                        $"{pipeline.UNetConfig.SampleSize} × the VAE's downsampling factor {pipeline.VaeConfig.DownsamplingFactor} " +
                                        "(excise train --pipeline sets it).");
        if (data.ToGrey) throw new ArgumentException("data.to_grey: a Stable Diffusion VAE encodes RGB images; drop data.to_grey.");
        if (PipelineSha256 is not null && pipeline.ContentHash() is var digest && digest != PipelineSha256.ToLowerInvariant())
            throw new ArgumentException($"pipeline_sha256: the folder {pipeline.Path} has content hash {digest}, not the {PipelineSha256} this run " +
                                        "started from; it changed since. Start a new run from it (another --out), or restore the pipeline it was trained from.");
        SelectiveOrDefault.Validate(data, Lora, pipeline.TextEncoderConfig.HiddenSize, () =>
            {
                using var encoder = pipeline.LoadTextEncoder();
                return encoder.Id;
            },
            "Rebuild the basis from this pipeline's text encoder (leave selective.basis out and give selective.concept).",
            canBuildBasis: true);
    }

    /// <summary>The weights a fine-tune starts from: a run directory's sampling weights, or a safetensors file.</summary>
    public string? InitWeightsPath()
    {
        if (Init is null) return null;
        if (File.Exists(Init)) return System.IO.Path.GetFullPath(Init);
        var path = new RunDirectory(Init).ModelPath;
        return File.Exists(path) ? path : throw new ArgumentException($"init: {Init} has no model.safetensors (has its training finished?).");
    }

    /// <summary>The UNet: the run's own 'model' section, or the config of the run it fine-tunes (init).</summary>
    public UNetConfig ResolveUNetConfig()
    {
        if (OpenPipelineFolder() is { } pipeline) return pipeline.UNetConfig;
        if (Model is not null) return ReadUNetConfig(Model.ToJsonString(), "model");
        var initRun = Init is not null && Directory.Exists(Init) ? new RunDirectory(Init) : null;
        if (initRun is null || !File.Exists(initRun.UNetConfigPath))
            throw new InvalidDataException("The config has no 'model' section (the UNet's diffusers config), and 'init' is not a run directory with a unet_config.json to take it from.");
        return ReadUNetConfig(File.ReadAllText(initRun.UNetConfigPath), $"init: {initRun.UNetConfigPath}");
    }

    static UNetConfig ReadUNetConfig(string json, string source)
    {
        try { return UNetConfig.FromDiffusersJson(json); }
        catch (Exception e) when (e is NotSupportedException or InvalidDataException) { throw new ArgumentException($"{source}: {e.Message}", e); }
    }

    void ValidateModelFits(UNetConfig unet)
    {
        if (unet.SampleSize != DataOrDefault.ImageSize)
            throw new ArgumentException($"model.sample_size ({unet.SampleSize}) must equal data.image_size ({DataOrDefault.ImageSize}).");
        if (unet.CrossAttentionDim != TextOrDefault.Width)
            throw new ArgumentException($"model.cross_attention_dim ({unet.CrossAttentionDim}) must equal the width of the text encoder's states ({TextOrDefault.Width} for text.encoder '{TextOrDefault.Encoder}').");
        if (unet.InChannels is not (1 or 3))
            throw new ArgumentException($"model.in_channels must be 1 (grey) or 3 (RGB) to train on images (got {unet.InChannels}).");
        if (unet.OutChannels != unet.InChannels)
            throw new ArgumentException($"model.out_channels ({unet.OutChannels}) must equal model.in_channels ({unet.InChannels}): the model predicts the noise added to the image.");
        // Every adapted q/k/v layer of a block has that block's channels as outputs; the default targets (attn2.to_k/to_v)
        // also read the text states. Other targets are checked layer by layer when the adapters are made.
        if (Lora is { Targets: null } lora)
        {
            if (lora.Rank > TextOrDefault.Width)
                throw new ArgumentException($"lora.rank ({lora.Rank}) is larger than the text width ({TextOrDefault.Width}) that the adapted cross-attention keys and values read; it must be at most {Math.Min(TextOrDefault.Width, unet.NarrowestAttentionChannels)}.");
            if (lora.Rank > unet.NarrowestAttentionChannels)
                throw new ArgumentException($"lora.rank ({lora.Rank}) is larger than the {unet.NarrowestAttentionChannels} channels of the narrowest attention block (model.block_out_channels); it must be at most {Math.Min(TextOrDefault.Width, unet.NarrowestAttentionChannels)}.");
        }
    }
}

public enum LearningRateSchedule { Constant, Cosine }

/// <summary>
/// What training does when a step's loss or gradient norm is NaN or infinite: stop (the last checkpoint is the last
/// good state), or skip that batch's update and go on, stopping only after training.max_consecutive_skips in a row.
/// </summary>
public enum NonfinitePolicy { Stop, Skip }

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
    /// <summary>
    /// Keep every image and caption, but leave the concept's pixels (its mask, grown by selective.mask_margin) out of
    /// the denoising loss, so the model learns everything in those images except how to draw the concept
    /// (kohya-ss sd-scripts' --masked_loss). Needs masks: the stamper's own, or an imagefolder's.
    /// </summary>
    MaskedLoss,
    /// <summary>Both sides at once: <see cref="UpdateProjection"/> on the text-facing weights and <see cref="MaskedLoss"/> on the pixels.</summary>
    MaskedUpdateProjection,
    /// <summary>
    /// <see cref="MaskedLoss"/> for a user without masks: the masks come from a detector of the concept (selective.mask_folder,
    /// written by <c>excise masks</c>), which decides both which images carry it and where, misses included.
    /// </summary>
    DetectorMaskedLoss,
}

/// <param name="LossMask">Any arm: leave the concept's masked pixels out of the loss as <see cref="TrainingArm.MaskedLoss"/> does
/// (with a projection arm: the text side projected and the image side masked).</param>
/// <param name="MaskMargin">Pixels the concept mask is grown by before it is left out of the loss. Default 2: a generated
/// or re-encoded logo bleeds a pixel or two past its stamp (blur, antialiased edges), and the loss must not teach that halo.</param>
/// <param name="MaskFolder">Concept masks made apart from the data (<see cref="ConceptMaskFolder"/>, e.g. by <c>excise masks</c>):
/// they replace the data's own masks for the masked loss. Required by <see cref="TrainingArm.DetectorMaskedLoss"/>.</param>
/// <param name="MaskFolderSha256">The mask folder's content hash (<see cref="ConceptMaskFolder.ContentHash"/>). Training fills it
/// in, so a run records which masks it learned around; given, a folder whose masks changed is refused.</param>
/// <param name="EraseConcept">Projection arms: before training, also remove the projected weights' existing response to the
/// concept subspace (W ← W(I − UUᵀ)), so no layer can learn to read what the base model's K/V already make of the concept's
/// states. The model then cannot see those directions at all — the text-side end of the method.</param>
/// <param name="Concept">Pipeline runs: the phrase a projection arm projects away when no basis is given; the run builds its
/// basis from it with the pipeline's own CLIP encoder (the states its UNet reads), as <c>excise concept</c> builds one from MiniLM.</param>
public sealed record SelectiveConfig(
    TrainingArm Arm = TrainingArm.Standard,
    string? Basis = null,
    IReadOnlyList<string>? Parameters = null,
    double EmbedNoiseSigma = 0.1,
    double CertificateTolerance = 1e-4,
    bool EraseConcept = false,
    bool LossMask = false,
    int MaskMargin = 2,
    string? MaskFolder = null,
    string? MaskFolderSha256 = null,
    string? Concept = null)
{
    /// <summary>A typo guard: a margin this wide masks most of a 32-pixel image.</summary>
    public const int MaxMaskMargin = 16;

    [JsonIgnore] public bool Projects => ArmProjects(Arm);
    [JsonIgnore] public bool MasksLoss => Arm is TrainingArm.MaskedLoss or TrainingArm.MaskedUpdateProjection or TrainingArm.DetectorMaskedLoss || LossMask;

    /// <summary>The arms that project the text-facing weights' updates off a concept basis (and so need one).</summary>
    public static bool ArmProjects(TrainingArm arm) =>
        arm is TrainingArm.GradientProjection or TrainingArm.UpdateProjection or TrainingArm.MaskedUpdateProjection;

    /// <param name="textWidth">The width of the run's text states.</param>
    /// <param name="encoderId">The run's text encoder id (asked only when a basis is given, to check it was built with that encoder).</param>
    /// <param name="rebuildHint">What to do when the basis was built with another encoder.</param>
    /// <param name="canBuildBasis">Whether the run can build its basis from <see cref="Concept"/> itself (pipeline runs).</param>
    public void Validate(DataConfig data, LoraConfig? lora, int textWidth, Func<string> encoderId, string rebuildHint, bool canBuildBasis = false)
    {
        ConfigRules.RequireFinite(("selective.embed_noise_sigma", EmbedNoiseSigma), ("selective.certificate_tolerance", CertificateTolerance));
        string arm = Arm.ToName();
        if (Concept is not null && !canBuildBasis)
            throw new ArgumentException("selective.concept builds a basis from a pipeline's CLIP encoder (pipeline runs only); for this run build one with " +
                                        "'excise concept --concept \"...\" --out concept.safetensors' and give it as selective.basis.");
        if (Concept is not null && string.IsNullOrWhiteSpace(Concept)) throw new ArgumentException("selective.concept must not be empty.");
        if (Concept is not null && Basis is not null)
            throw new ArgumentException("selective.concept and selective.basis both say what to project away; give one of them.");
        if (Concept is not null && !Projects)
            throw new ArgumentException($"selective.concept names what a projection arm projects away; the {arm} arm projects nothing. Choose update-projection, gradient-projection or masked-update-projection.");
        if (Projects && string.IsNullOrWhiteSpace(Basis) && Concept is null)
            throw new ArgumentException(canBuildBasis
                ? $"the {arm} arm needs the concept to project away: give selective.concept (excise train --concept \"...\") or a basis built with this pipeline's encoder (selective.basis)."
                : $"selective.basis is required for the {arm} arm: build one with 'excise concept --concept \"...\" --out concept.safetensors'.");
        if (!Projects && Basis is not null)
            throw new ArgumentException($"selective.basis is only used by the projection arms (gradient-projection, update-projection, masked-update-projection); the {arm} arm would ignore it. Drop --basis or choose a projection arm.");
        if (!Projects && Parameters is not null)
            throw new ArgumentException($"selective.parameters names the weights a projection arm constrains; the {arm} arm projects nothing.");
        if (Arm is TrainingArm.ScrubCaptions && data.Concept is null)
            throw new ArgumentException("selective.arm 'scrub-captions' needs data.concept (the phrase to scrub).");
        if (Arm is TrainingArm.FilterImages && data.Concept is null && data.Source == "fashion-mnist")
            throw new ArgumentException("selective.arm 'filter-images' needs data.concept: plain Fashion-MNIST has no stamped images to filter.");
        if (EraseConcept && !Projects)
            throw new ArgumentException($"selective.erase_concept needs a projection arm (gradient-projection, update-projection or masked-update-projection), not {arm}.");
        if (EraseConcept && lora is not null)
            throw new ArgumentException("selective.erase_concept is not supported with lora (the frozen base weights would need erasing).");
        if (EmbedNoiseSigma < 0) throw new ArgumentException($"selective.embed_noise_sigma must be ≥ 0 (got {EmbedNoiseSigma}).");
        if (MaskMargin is < 0 or > MaxMaskMargin) throw new ArgumentException($"selective.mask_margin must be within [0, {MaxMaskMargin}] pixels (got {MaskMargin}).");
        ValidateMaskFolder(arm);
        if (MasksLoss && MaskFolder is null && data.Concept is null && data.Source == "fashion-mnist")
            throw new ArgumentException($"the {(LossMask ? "selective.loss_mask option" : "masked-loss arm")} needs concept masks: plain Fashion-MNIST has none; set data.concept (the stamper records where it draws) or train on an imagefolder with masks.");
        if (Arm is TrainingArm.MaskedLoss or TrainingArm.MaskedUpdateProjection or TrainingArm.DetectorMaskedLoss && LossMask)
            throw new ArgumentException($"selective.loss_mask is what the {arm} arm does already; set one or the other.");
        if (!(CertificateTolerance > 0)) throw new ArgumentException($"selective.certificate_tolerance must be > 0 (got {CertificateTolerance}).");
        ConfigRules.RequireRegexes(Parameters, "selective.parameters");
        if (Basis is not null)
        {
            if (!File.Exists(Basis)) throw new ArgumentException($"selective.basis: file not found: {Basis}");
            using var basis = ConceptBasis.Load(Basis);
            if (basis.Dimension != textWidth)
                throw new ArgumentException($"selective.basis: {Basis} spans {basis.Dimension}-dimensional states, but the text encoder's states are {textWidth}-dimensional.");
            // Same width is not enough: a basis of states encoded with another max length (truncation, position of padding)
            // spans other directions than this run's captions produce.
            if (encoderId() is var id && basis.Info.EncoderId != id)
                throw new ArgumentException($"selective.basis: {Basis} was built with the text encoder '{basis.Info.EncoderId}', but this run encodes its captions " +
                    $"with '{id}'. {rebuildHint}");
            if (basis.Rank >= textWidth)
                throw new ArgumentException($"selective.basis: {Basis} has rank {basis.Rank}, the whole {textWidth}-dimensional text space: projecting it out would leave the keys and values nothing to learn.");
        }
    }

    void ValidateMaskFolder(string arm)
    {
        if (Arm is TrainingArm.DetectorMaskedLoss && MaskFolder is null)
            throw new ArgumentException("selective.mask_folder is required for the detector-masked-loss arm: write one from a concept detector with " +
                                        "'excise masks --config FILE --detector DETECTOR.safetensors --out DIR'.");
        if (MaskFolder is null)
        {
            if (MaskFolderSha256 is not null) throw new ArgumentException("selective.mask_folder_sha256 pins a mask folder, but selective.mask_folder is not set.");
            return;
        }
        if (!MasksLoss)
            throw new ArgumentException($"selective.mask_folder gives masks to the masked loss; the {arm} arm would ignore them. Choose masked-loss, " +
                                        "detector-masked-loss or masked-update-projection, or set selective.loss_mask=true.");
        if (!Directory.Exists(MaskFolder)) throw new ArgumentException($"selective.mask_folder: no folder at '{MaskFolder}'.");
        if (!File.Exists(ConceptMaskFolder.IndexPath(MaskFolder)))
            throw new ArgumentException($"selective.mask_folder: '{MaskFolder}' has no {ConceptMaskFolder.IndexFileName}; write one with 'excise masks'.");
        if (MaskFolderSha256 is not null && ConceptMaskFolder.ContentHash(MaskFolder) is var digest && digest != MaskFolderSha256.ToLowerInvariant())
            throw new ArgumentException($"selective.mask_folder_sha256: the masks in '{MaskFolder}' have hash {digest}, not the {MaskFolderSha256} this run " +
                                        "trained with; they changed since. Start a new run (another --out), or restore the masks.");
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
    int GcEvery = 10,
    NonfinitePolicy OnNonfinite = NonfinitePolicy.Stop,
    int MaxConsecutiveSkips = 10,
    bool GradientCheckpointing = false)
{
    /// <summary>A typo guard: the batch's indices and images are allocated at this size before anything checks memory.</summary>
    public const int MaxBatchSize = 65_536;

    public void Validate()
    {
        ConfigRules.RequireFinite(("training.learning_rate", LearningRate), ("training.weight_decay", WeightDecay), ("training.beta1", Beta1),
            ("training.beta2", Beta2), ("training.epsilon", Epsilon), ("training.grad_clip", GradClip), ("training.momentum", Momentum),
            ("training.ema_decay", EmaDecay), ("training.caption_dropout", CaptionDropout));
        if (Steps < 1) throw new ArgumentException($"training.steps must be ≥ 1 (got {Steps}).");
        if (BatchSize is < 1 or > MaxBatchSize) throw new ArgumentException($"training.batch_size must be within [1, {MaxBatchSize}] (got {BatchSize}).");
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
        if (MaxConsecutiveSkips < 1) throw new ArgumentException($"training.max_consecutive_skips must be ≥ 1 (got {MaxConsecutiveSkips}).");
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
    long Seed = 0,
    SamplerKind Sampler = SamplerKind.Ddim)
{
    /// <summary>A typo guard: a row of this many images is already wider than any screen.</summary>
    public const int MaxPerPrompt = 256;

    public void Validate()
    {
        ConfigRules.RequireNoBlankEntries(Prompts, "preview.prompts");
        if (PerPrompt is < 0 or > MaxPerPrompt) throw new ArgumentException($"preview.per_prompt must be within [0, {MaxPerPrompt}] (0 = no preview grid), got {PerPrompt}.");
        if (Steps < 1) throw new ArgumentException($"preview.steps must be ≥ 1 (got {Steps}).");
        ConfigRules.RequireFinite(("preview.guidance_scale", GuidanceScale));
        if (GuidanceScale < 0) throw new ArgumentException($"preview.guidance_scale must be ≥ 0 (got {GuidanceScale}).");
    }
}
