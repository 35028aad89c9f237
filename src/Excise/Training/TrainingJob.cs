using System.Text.Json;
using Excise.Diffusion;
using Excise.Configuration;
using Excise.Data;
using Excise.Projection;
using Excise.Models;
using Excise.Models.Lora;
using Excise.Serialization;
using Excise.Text;
using Excise.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Training;

public sealed record TrainingJobResult(RunDirectory Run, TrainingSummary Summary, int TrainImages, int DistinctCaptions, TimeSpan TextEncodeTime,
                                       string? PreviewPath, ProjectionCertificate? Certificate = null, TimeSpan ProjectionTime = default);

/// <summary>
/// One training run end to end: resolve the config into the run directory, build the dataset and its frozen
/// text states, build (or restore) the UNet, train, then write the sampling weights and a preview grid.
/// </summary>
public static class TrainingJob
{
    public static TrainingJobResult Run(RunConfig config, RunDirectory run, bool resume, IProgress<TrainingProgress>? progress = null,
                                        Action<string>? log = null, CancellationToken cancel = default)
    {
        log ??= _ => { };
        config.Validate();
        // The run records which weights it started from; a resumed run's config already holds it, and Validate checked it.
        if (config.InitWeightsPath() is { } startFrom && config.InitSha256 is null)
            config = config with { InitSha256 = Digest.Sha256(startFrom) };
        // Likewise the masks it learns around, when they come from a mask folder.
        if (config.SelectiveOrDefault is { MaskFolder: { } maskFolder, MaskFolderSha256: null } maskedBy)
            config = config with { Selective = maskedBy with { MaskFolderSha256 = ConceptMaskFolder.ContentHash(maskFolder) } };
        using var runLock = RunLock.Acquire(run.Root, "training run");
        var checkpoints = new CheckpointStore(run.CheckpointsDir);
        string? resumeFrom = null;
        if (resume)
        {
            var search = checkpoints.FindLatestGood();
            foreach (var rejection in search.Rejections) log(rejection);
            if (search.Warning is not null) log(search.Warning);
            resumeFrom = search.Path ?? throw new InvalidOperationException(search.Rejections.Count == 0
                ? $"{run.Root} has no complete checkpoint to resume from."
                : $"{run.Root} has no intact checkpoint to resume from. {string.Join(" ", search.Rejections)}");
            if (search.Rejections.Count > 0) log($"Using the previous good checkpoint {resumeFrom} (step {search.Step}) instead.");
        }
        else if (checkpoints.CompleteCheckpoints().Count > 0 || File.Exists(run.ModelPath))
        {
            throw new InvalidOperationException($"{run.Root} already holds a training run. Use --resume to continue it, or choose another --out.");
        }
        // Metrics from an attempt killed before its first checkpoint: the run starts over, so they would be duplicated.
        if (!resume) File.Delete(run.MetricsPath);

        TorchRuntime.ConfigureThreads(config.Threads);
        var device = TorchRuntime.ParseDevice(config.Device);
        var unetConfig = config.ResolveUNetConfig();
        var initWeights = InitWeightsPath(config);
        var selective = config.SelectiveOrDefault;
        AtomicFile.WriteAllText(run.ConfigPath, config.ToJson());
        AtomicFile.WriteAllText(run.UNetConfigPath, unetConfig.ToDiffusersJson());

        log("Loading the text encoder and the dataset…");
        using var encoder = MiniLmTextEncoder.Create(config.TextOrDefault.MaxLength);
        if (unetConfig.CrossAttentionDim != encoder.Width)
            throw new ArgumentException($"model.cross_attention_dim ({unetConfig.CrossAttentionDim}) must equal the text encoder's width ({encoder.Width}).");
        using var data = TrainingData.Prepare(config, encoder, unetConfig.InChannels);
        data.Text.Save(run.TextStatesPath);
        GroundTruthExport.WriteJsonl(run.GroundTruthPath, data.Dataset.Train);
        log($"{data.Batches.Count} training images, {data.Dataset.StampedCount} stamped, {data.Text.Count} distinct captions encoded in {data.Text.EncodeTime.TotalSeconds:F2} s.");

        TorchRuntime.Seed(config.Seed);
        using var model = new UNet2DConditionModel(unetConfig);
        if (initWeights is not null)
        {
            ModuleWeights.Load(model, initWeights);
            log($"Fine-tuning from {initWeights}.");
        }
        var adapters = config.Lora is { } lora
            ? Lora.Inject(model, new LoraOptions(lora.Rank, lora.Alpha, lora.Targets, config.Seed))
            : null;
        if (adapters is not null) log($"Training rank-{config.Lora!.Rank} LoRA adapters on {adapters.Adapters.Count} layers; the base weights are frozen.");
        model.to(device);

        using var basis = selective.Projects ? LoadRunBasis(config, run, resume) : null;
        using var projector = basis is null ? null : new ConceptProjector(basis.U,
            ConceptProjector.SelectParameters(model, ProjectedPatterns(config), basis.Dimension),
            selective.Arm == TrainingArm.GradientProjection ? ProjectionMode.Gradient : ProjectionMode.Update);
        if (projector is not null && !resume)
        {
            // LoRA's ΔW = scale·B·A reads text through A: A's rows must start in the complement, then stay there.
            if (adapters is not null)
                projector.ProjectValues(projector.Targets.Where(t => t.Name.EndsWith(".lora_A.weight")).Select(t => t.Param));
            if (selective.EraseConcept)
            {
                projector.ProjectValues(projector.Targets.Select(t => t.Param));
                log("Erased the projected weights' response to the concept subspace before training.");
            }
            if (initWeights is null || selective.EraseConcept) ModuleWeights.Save(model, run.InitialWeightsPath);
        }

        // Built only now, after the projections above: the trainer's EMA shadow is a copy of the weights training starts
        // from, so it too starts in the complement and the EMA weights (model.safetensors) carry the certificate.
        // A resumed run overwrites the shadow from its checkpoint, so this order changes nothing there.
        using var trainer = new Trainer(config, model, Predictor(model), data.Batches, run, device);
        trainer.Log = log;
        if (selective.Arm == TrainingArm.EmbedNoise) trainer.TextNoiseSigma = selective.EmbedNoiseSigma;
        trainer.ExtraState["arm"] = selective.Arm.ToName();
        if (projector is not null)
        {
            trainer.ExtraState["projection_mode"] = projector.Mode.ToString();
            trainer.ExtraState["projected_weights"] = string.Join(",", projector.Targets.Select(t => t.Name));
            trainer.ExtraState["concept_basis_sha256"] = Digest.Sha256(run.BasisPath);
            trainer.AddHook(projector);
            log($"Projecting {projector.Targets.Count} weights off a rank-{basis!.Rank} concept subspace ({projector.Mode} mode).");
        }
        if (resumeFrom is not null)
        {
            trainer.Resume(resumeFrom);
            log($"Resumed from {resumeFrom} (step {trainer.StartStep}).");
        }
        var summary = trainer.Train(progress, cancel);
        if (adapters is not null) SaveMergedLora(model, adapters, run);

        string? preview = null;
        var previewConfig = config.PreviewOrDefault;
        if (previewConfig.PerPrompt > 0)
        {
            log("Sampling the preview grid…");
            ModuleWeights.Load(model, run.ModelPath);
            using var pipeline = new TextToImagePipeline(model, encoder, new NoiseSchedule(config.DiffusionOrDefault), device);
            var prompts = previewConfig.Prompts ?? DefaultPreviewPrompts(data.Dataset);
            var grid = pipeline.GenerateGrid(prompts, previewConfig.PerPrompt,
                new SamplingOptions(previewConfig.Steps, previewConfig.GuidanceScale, Seed: previewConfig.Seed, Sampler: previewConfig.Sampler));
            Imaging.PngIO.Save(grid, run.PreviewPath);
            preview = run.PreviewPath;
        }

        ProjectionCertificate? certificate = null;
        if (basis is not null)
        {
            var reference = CertificateReference(config, run);
            certificate = ProjectionCertificate.Compute(run.ModelPath, reference, basis.U,
                ProjectionCertificate.MergedWeightPatterns(ProjectedPatterns(config)), selective.CertificateTolerance);
            AtomicFile.WriteAllText(run.CertificatePath, certificate.ToJson());
            log($"Certificate: worst share of the learned change inside the concept subspace {certificate.WorstShare:E2} " +
                $"(tolerance {selective.CertificateTolerance:E0}) — {(certificate.Passed ? "passed" : "NOT passed")}.");
        }

        var result = new TrainingJobResult(run, summary, data.Batches.Count, data.Text.Count, data.Text.EncodeTime, preview,
            certificate, projector?.Elapsed ?? TimeSpan.Zero);
        WriteSummary(run, config, result);
        return result;
    }

    /// <summary>The weights a fine-tune starts from: a run directory's sampling weights, or a safetensors file.</summary>
    public static string? InitWeightsPath(RunConfig config) => config.InitWeightsPath();

    /// <summary>
    /// What a projected run's certificate compares the trained weights with: the weights training started from —
    /// the init run's, or the run's own initial weights when it started from scratch or erased the concept first.
    /// </summary>
    public static string CertificateReference(RunConfig config, RunDirectory run) =>
        config.SelectiveOrDefault.EraseConcept || config.Init is null ? run.InitialWeightsPath : InitWeightsPath(config)!;

    /// <summary>The weights a projection arm constrains; with LoRA, the adapters' A factors of those weights.</summary>
    public static IReadOnlyList<string> ProjectedPatterns(RunConfig config) =>
        config.SelectiveOrDefault.Parameters
        ?? (config.Lora is null ? ConceptProjector.DefaultPatterns
            : ConceptProjector.DefaultPatterns.Select(p => p.Replace(@"\.weight$", @"\.lora_A\.weight$")).ToList());

    /// <summary>Writes the adapters alone, then merges them so model.safetensors is a plain UNet any sampler can load.</summary>
    static void SaveMergedLora(UNet2DConditionModel model, LoraAdapters adapters, RunDirectory run)
    {
        ModuleWeights.Load(model, run.ModelPath);
        Lora.SaveAdapters(adapters, run.LoraPath);
        Lora.Merge(model);
        var metadata = SafetensorsFile.ReadMetadata(run.ModelPath);
        ModuleWeights.Save(model, run.ModelPath, metadata);
    }

    /// <summary>Copies the configured basis into the run on a fresh start; a resume uses the run's copy.</summary>
    static ConceptBasis LoadRunBasis(RunConfig config, RunDirectory run, bool resume)
    {
        if (!resume || !File.Exists(run.BasisPath))
            File.Copy(config.SelectiveOrDefault.Basis!, run.BasisPath, overwrite: true);
        return ConceptBasis.Load(run.BasisPath);
    }

    public static NoisePredictor Predictor(UNet2DConditionModel model) => (x, t, states, mask) => model.forward(x, t, states, mask);

    /// <summary>One prompt per class present in the data ("a photo of a sneaker", …), or the first captions of an imagefolder.</summary>
    public static IReadOnlyList<string> DefaultPreviewPrompts(ConceptDataset dataset)
    {
        var labels = dataset.Train.Where(e => e.ClassLabel is >= 0 and < FashionMnistClasses.Count).Select(e => e.ClassLabel!.Value).Distinct().Order().ToList();
        if (labels.Count > 0) return labels.Select(l => Articles.Fix($"a photo of a {FashionMnistClasses.CaptionNounOf(l)}")).ToList();
        return dataset.Train.Select(e => e.Caption).Distinct().Take(8).ToList();
    }

    static void WriteSummary(RunDirectory run, RunConfig config, TrainingJobResult r)
    {
        var s = r.Summary;
        new RunSummary(config.Name, config.Hash(), s.Steps, s.ResumedFrom, s.SkippedSteps, s.FinalLoss, s.MeanLossLast100,
            s.Elapsed.TotalSeconds, s.MedianSecondsPerStep, s.ImagesPerSecond, s.PeakRssBytes / (1024.0 * 1024.0),
            r.TrainImages, r.DistinctCaptions, r.TextEncodeTime.TotalSeconds, config.SelectiveOrDefault.Arm.ToName(), InitWeightsPath(config),
            r.ProjectionTime.TotalSeconds, s.Elapsed.TotalSeconds > 0 ? r.ProjectionTime.TotalSeconds / s.Elapsed.TotalSeconds : 0,
            r.Certificate?.Passed, r.Certificate?.WorstShare, get_num_threads(), $"{Environment.ProcessorCount} cores, {Environment.OSVersion}")
            .Save(run);
    }
}
