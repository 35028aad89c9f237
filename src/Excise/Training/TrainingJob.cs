using System.Text.Json;
using Excise.Diffusion;
using Excise.Configuration;
using Excise.Data;
using Excise.Distributed;
using Excise.Projection;
using Excise.Models;
using Excise.Models.Lora;
using Excise.Pipelines;
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
/// Under a process group of several ranks (data parallelism, docs/distributed.md) every rank builds the same data and
/// model and trains its slice of each batch; rank 0 alone locks and writes the run directory, and the others only read it.
/// </summary>
public static class TrainingJob
{
    public static TrainingJobResult Run(RunConfig config, RunDirectory run, bool resume, IProgress<TrainingProgress>? progress = null,
                                        Action<string>? log = null, CancellationToken cancel = default, ProcessGroup? group = null)
    {
        log ??= _ => { };
        group ??= new SingleProcessGroup();
        bool writes = group.IsRoot;
        config = Pinned(config);
        using var runLock = writes ? RunLock.Acquire(run.Root, "training run") : null;
        var resumeFrom = resume ? LatestGoodCheckpoint(run, log) : RequireFreshStart(run, writes);
        TorchRuntime.ConfigureThreads(config.Threads);
        var device = TorchRuntime.ParseDevice(config.Device);
        var unetConfig = config.ResolveUNetConfig();
        if (writes)
        {
            AtomicFile.WriteAllText(run.ConfigPath, config.ToJson());
            AtomicFile.WriteAllText(run.UNetConfigPath, unetConfig.ToDiffusersJson());
        }

        var pipeline = config.OpenPipelineFolder();
        if (pipeline is not null)
            log($"Fine-tuning the Stable Diffusion pipeline {pipeline.Path} (content hash {config.PipelineSha256![..16]}…): its UNet on VAE latents, " +
                $"captions through its CLIP text encoder, {config.DiffusionOrDefault.PredictionType.ToName()} prediction on its scheduler's schedule.");
        log("Loading the text encoder and the dataset…");
        using var encoder = pipeline is null ? MiniLmTextEncoder.Create(config.TextOrDefault.MaxLength) : (ITextEncoder)pipeline.LoadTextEncoder();
        using var data = PrepareData(config, run, unetConfig, encoder, pipeline, device, log, writes);
        using var model = BuildModel(config, unetConfig, pipeline, log, out var adapters);
        model.to(device);
        var selective = config.SelectiveOrDefault;
        if (selective.Projects && writes) CopyBasisIntoRun(config, run, resume, encoder, log);
        // The other ranks read the run's basis copy (and on a resume its checkpoint) only once rank 0 has written it.
        group.Barrier();
        using var basis = selective.Projects ? ConceptBasis.Load(run.BasisPath) : null;
        using var projector = basis is null ? null : StartProjection(config, run, model, basis, adapters, fresh: resumeFrom is null, log, writes);

        // Built only now, after the projections above: the trainer's EMA shadow is a copy of the weights training starts
        // from, so it too starts in the complement and the EMA weights (model.safetensors) carry the certificate.
        // A resumed run overwrites the shadow from its checkpoint, so this order changes nothing there.
        using var trainer = BuildTrainer(config, run, model, data, device, projector, basis, log, group);
        if (resumeFrom is not null)
        {
            trainer.Resume(resumeFrom);
            log($"Resumed from {resumeFrom} (step {trainer.StartStep}).");
        }
        var summary = trainer.Train(progress, cancel);
        // What follows reads the weights rank 0 wrote and writes files; the other ranks are done (their weights were
        // checked identical to rank 0's at the last step).
        if (!writes) return new TrainingJobResult(run, summary, data.Batches.Count, data.Text.Count, data.Text.EncodeTime, null);
        if (adapters is not null) SaveMergedLora(model, adapters, run);

        var preview = WritePreview(config, run, model, encoder, pipeline, data.Dataset, device, log);
        if (pipeline is not null) WritePipeline(pipeline, run, model, log);
        var certificate = basis is null ? null : Certify(run, log);
        var result = new TrainingJobResult(run, summary, data.Batches.Count, data.Text.Count, data.Text.EncodeTime, preview,
            certificate, projector?.Elapsed ?? TimeSpan.Zero);
        WriteSummary(run, config, result, group);
        return result;
    }

    /// <summary>
    /// The config validated, with what the run starts from pinned by content: the init weights and the mask folder. A
    /// resumed run's config already holds both, and Validate checked them against the files.
    /// </summary>
    static RunConfig Pinned(RunConfig config)
    {
        config.Validate();
        if (config.InitWeightsPath() is { } startFrom && config.InitSha256 is null)
            config = config with { InitSha256 = Digest.Sha256(startFrom) };
        if (config.OpenPipelineFolder() is { } pipeline)
        {
            // The schedule is the pipeline's scheduler's, written into the run's config so sampling and resumes read it there.
            if (config.PipelineSha256 is null) config = config with { PipelineSha256 = pipeline.ContentHash() };
            config = config with { Diffusion = pipeline.NoiseSchedule };
        }
        if (config.SelectiveOrDefault is { MaskFolder: { } maskFolder, MaskFolderSha256: null } maskedBy)
            config = config with { Selective = maskedBy with { MaskFolderSha256 = ConceptMaskFolder.ContentHash(maskFolder) } };
        return config;
    }

    /// <summary>The newest intact checkpoint (a damaged newer one is named and passed over); none at all is an error.</summary>
    static string LatestGoodCheckpoint(RunDirectory run, Action<string> log)
    {
        var search = new CheckpointStore(run.CheckpointsDir).FindLatestGood();
        foreach (var rejection in search.Rejections) log(rejection);
        if (search.Warning is not null) log(search.Warning);
        var path = search.Path ?? throw new InvalidOperationException(search.Rejections.Count == 0
            ? $"{run.Root} has no complete checkpoint to resume from."
            : $"{run.Root} has no intact checkpoint to resume from. {string.Join(" ", search.Rejections)}");
        if (search.Rejections.Count > 0) log($"Using the previous good checkpoint {path} (step {search.Step}) instead.");
        return path;
    }

    /// <summary>Refuses to start over a run that has checkpoints or weights; returns null (nothing to resume from).</summary>
    static string? RequireFreshStart(RunDirectory run, bool writes)
    {
        if (new CheckpointStore(run.CheckpointsDir).CompleteCheckpoints().Count > 0 || File.Exists(run.ModelPath))
            throw new InvalidOperationException($"{run.Root} already holds a training run. Use --resume to continue it, or choose another --out.");
        // Metrics from an attempt killed before its first checkpoint: the run starts over, so they would be duplicated.
        if (writes) File.Delete(run.MetricsPath);
        return null;
    }

    /// <summary>Dataset → captions → text states, with the states and the ground truth written into the run.</summary>
    static PreparedData PrepareData(RunConfig config, RunDirectory run, UNetConfig unetConfig, ITextEncoder encoder, StableDiffusionPipelineFolder? pipeline,
                                    Device device, Action<string> log, bool writes)
    {
        if (unetConfig.CrossAttentionDim != encoder.Width)
            throw new ArgumentException($"model.cross_attention_dim ({unetConfig.CrossAttentionDim}) must equal the text encoder's width ({encoder.Width}).");
        if (pipeline is not null) log("Preparing the images and their VAE latents (encoded once per run; a resume reads them back)…");
        var data = pipeline is null
            ? TrainingData.Prepare(config, encoder, unetConfig.InChannels)
            : TrainingData.PrepareLatents(config, encoder, pipeline, run.LatentsPath, device, writes);
        try
        {
            if (!writes) return data;
            data.Text.Save(run.TextStatesPath);
            GroundTruthExport.WriteJsonl(run.GroundTruthPath, data.Dataset.Train);
        }
        catch
        {
            data.Dispose();
            throw;
        }
        log(data.ImagesDone);
        log($"{data.Batches.Count} training images, {data.Dataset.StampedCount} stamped, {data.Text.Count} distinct captions encoded in {data.Text.EncodeTime.TotalSeconds:F2} s.");
        return data;
    }

    /// <summary>The UNet, seeded, with the init weights loaded and LoRA adapters injected when configured.</summary>
    static UNet2DConditionModel BuildModel(RunConfig config, UNetConfig unetConfig, StableDiffusionPipelineFolder? pipeline, Action<string> log, out LoraAdapters? adapters)
    {
        TorchRuntime.Seed(config.Seed);
        var model = new UNet2DConditionModel(unetConfig);
        try
        {
            if (pipeline is not null)
            {
                model.LoadSafetensors(pipeline.UNetWeights.Path);
                log($"Fine-tuning the pipeline's UNet from {pipeline.UNetWeights.Path}.");
            }
            if (config.InitWeightsPath() is { } initWeights)
            {
                ModuleWeights.Load(model, initWeights);
                log($"Fine-tuning from {initWeights}.");
            }
            adapters = config.Lora is { } lora ? Lora.Inject(model, new LoraOptions(lora.Rank, lora.Alpha, lora.Targets, config.Seed)) : null;
            if (adapters is not null) log($"Training rank-{config.Lora!.Rank} LoRA adapters on {adapters.Adapters.Count} layers; the base weights are frozen.");
            model.GradientCheckpointing = config.TrainingOrDefault.GradientCheckpointing;
            if (model.GradientCheckpointing) log("Gradient checkpointing: each resnet and transformer recomputes its activations in backward (less memory, about a third more time per step).");
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The projector of a projection arm. On a fresh start it first moves what must begin in the complement there —
    /// LoRA's A factors (ΔW = scale·B·A reads text through A), and with erase_concept the weights themselves — and saves
    /// the weights training starts from when they are the certificate's reference.
    /// </summary>
    static ConceptProjector StartProjection(RunConfig config, RunDirectory run, UNet2DConditionModel model, ConceptBasis basis,
                                            LoraAdapters? adapters, bool fresh, Action<string> log, bool writes)
    {
        var selective = config.SelectiveOrDefault;
        var projector = new ConceptProjector(basis.U, ConceptProjector.SelectParameters(model, ProjectedPatterns(config), basis.Dimension),
            selective.Arm == TrainingArm.GradientProjection ? ProjectionMode.Gradient : ProjectionMode.Update);
        if (!fresh)
        {
            // Update mode measures the change from the start, so a resumed run needs the same start: LoRA's A factors
            // began in the complement, every other target as the certificate's reference weights have it.
            if (adapters is not null) projector.StartFrom(_ => null);
            else if (projector.Mode == ProjectionMode.Update)
            {
                var referencePath = CertificateReference(config, run);
                using var reference = SafetensorsFile.Load(referencePath);
                projector.StartFrom(name => reference.Tensors.TryGetValue(name, out var w) ? w
                    : throw new InvalidDataException($"{referencePath} has no '{name}', the projected weight whose start a resumed run needs."));
            }
            return projector;
        }
        if (adapters is not null)
            projector.ProjectValues(projector.Targets.Where(t => t.Name.EndsWith(".lora_A.weight")).Select(t => t.Param));
        if (selective.EraseConcept)
        {
            projector.ProjectValues(projector.Targets.Select(t => t.Param));
            log("Erased the projected weights' response to the concept subspace before training.");
        }
        if (adapters is not null) projector.StartFrom(_ => null);
        else projector.StartFrom(name => projector.Targets.First(t => t.Name == name).Param);
        if ((config.InitWeightsPath() is null || selective.EraseConcept) && writes) ModuleWeights.Save(model, run.InitialWeightsPath);
        return projector;
    }

    /// <summary>The trainer with the arm's settings: text noise, the projection hook, and what its checkpoints record.</summary>
    static Trainer BuildTrainer(RunConfig config, RunDirectory run, UNet2DConditionModel model, PreparedData data, Device device,
                                ConceptProjector? projector, ConceptBasis? basis, Action<string> log, ProcessGroup group)
    {
        var selective = config.SelectiveOrDefault;
        var trainer = new Trainer(config, model, NoisePredictors.Of(model), data.Batches, run, device) { Log = log, Group = group };
        if (selective.Arm == TrainingArm.EmbedNoise) trainer.TextNoiseSigma = selective.EmbedNoiseSigma;
        trainer.ExtraState["arm"] = selective.Arm.ToName();
        if (projector is not null)
        {
            trainer.ExtraState["projection_mode"] = projector.Mode.ToString();
            trainer.ExtraState["projected_weights"] = string.Join(",", projector.Targets.Select(t => t.Name));
            trainer.ExtraState["concept_basis_sha256"] = Digest.Sha256(run.BasisPath);
            trainer.AddHook(new ProjectionHook(projector));
            log($"Projecting {projector.Targets.Count} weights off a rank-{basis!.Rank} concept subspace ({projector.Mode} mode).");
        }
        return trainer;
    }

    /// <summary>The preview grid from the sampling weights (preview.per_prompt images per prompt); null when it is 0.</summary>
    static string? WritePreview(RunConfig config, RunDirectory run, UNet2DConditionModel model, ITextEncoder encoder, StableDiffusionPipelineFolder? folder,
                                ConceptDataset dataset, Device device, Action<string> log)
    {
        var preview = config.PreviewOrDefault;
        if (preview.PerPrompt <= 0) return null;
        log(folder is null ? "Sampling the preview grid…" : "Sampling the preview grid (latents decoded by the pipeline's VAE)…");
        ModuleWeights.Load(model, run.ModelPath);
        using var vae = folder?.LoadVae();
        vae?.to(device);
        using var pipeline = new TextToImagePipeline(model, encoder, new NoiseSchedule(config.DiffusionOrDefault), device, decoder: vae,
            schedulerSampling: folder?.SchedulerConfig.Sampling);
        var grid = pipeline.GenerateGrid(preview.Prompts ?? DefaultPreviewPrompts(dataset), preview.PerPrompt,
            new SamplingOptions(preview.Steps, preview.GuidanceScale, Seed: preview.Seed, Sampler: preview.Sampler));
        Imaging.PngIO.Save(grid, run.PreviewPath);
        return run.PreviewPath;
    }

    /// <summary>The run's certificate as <c>excise verify</c> computes it (its own basis copy, reference weights and tolerance), saved beside the weights.</summary>
    static ProjectionCertificate Certify(RunDirectory run, Action<string> log)
    {
        var result = RunCertificate.Compute(run, new RunCertificateRequest());
        var certificate = result.Certificate;
        AtomicFile.WriteAllText(run.CertificatePath, certificate.ToJson());
        log($"Certificate: worst share of the learned change inside the concept subspace {certificate.WorstShare:E2} " +
            $"(tolerance {result.Tolerance:E0}) — {(certificate.Passed ? "passed" : "NOT passed")}" +
            (certificate.Weights.Any(w => w.PassedWithinRounding) ? "; the weights over the tolerance changed along the concept by no more than the rounding of their float32 values." : "."));
        return certificate;
    }

    /// <summary>
    /// What a projected run's certificate compares the trained weights with: the weights training started from —
    /// the init run's, or the run's own initial weights when it started from scratch or erased the concept first.
    /// </summary>
    public static string CertificateReference(RunConfig config, RunDirectory run) =>
        config.SelectiveOrDefault.EraseConcept || config.Init is null ? run.InitialWeightsPath : config.InitWeightsPath()!;

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

    /// <summary>
    /// Copies the configured basis into the run on a fresh start — or, for a pipeline run given selective.concept, builds
    /// it from the concept with the run's own text encoder (the pipeline's CLIP, whose states the UNet reads) as
    /// <c>excise concept</c> builds one. A resume uses the run's copy.
    /// </summary>
    static void CopyBasisIntoRun(RunConfig config, RunDirectory run, bool resume, ITextEncoder encoder, Action<string> log)
    {
        if (resume && File.Exists(run.BasisPath)) return;
        var selective = config.SelectiveOrDefault;
        if (selective.Basis is { } basisFile)
        {
            File.Copy(basisFile, run.BasisPath, overwrite: true);
            return;
        }
        using var built = ConceptSubspaceBuilder.Build(encoder, [selective.Concept!], new SubspaceOptions());
        built.Save(run.BasisPath);
        log($"Built a rank-{built.Rank} concept basis for \"{selective.Concept}\" from {encoder.Id} ({built.Info.Prompts.Count} prompts), saved as {run.BasisPath}.");
    }

    /// <summary>
    /// The fine-tuned pipeline folder in the run: the original pipeline with the UNet's sampling weights (model.safetensors:
    /// the EMA weights when EMA is on), every other file copied. A finished run extended by --resume replaces its old copy.
    /// </summary>
    static void WritePipeline(StableDiffusionPipelineFolder pipeline, RunDirectory run, UNet2DConditionModel model, Action<string> log)
    {
        ModuleWeights.Load(model, run.ModelPath);
        if (Directory.Exists(run.PipelinePath))
        {
            var replacement = run.PipelinePath + ".new";
            if (Directory.Exists(replacement)) Directory.Delete(replacement, recursive: true);
            pipeline.Save(replacement, model);
            Directory.Delete(run.PipelinePath, recursive: true);
            Directory.Move(replacement, run.PipelinePath);
        }
        else pipeline.Save(run.PipelinePath, model);
        log($"Wrote the fine-tuned pipeline to {run.PipelinePath} (diffusers' layout; StableDiffusionPipeline.from_pretrained loads it).");
    }


    /// <summary>One prompt per class present in the data ("a photo of a sneaker", …), or the first captions of an imagefolder.</summary>
    public static IReadOnlyList<string> DefaultPreviewPrompts(ConceptDataset dataset)
    {
        var labels = dataset.Train.Where(e => e.ClassLabel is >= 0 and < FashionMnistClasses.Count).Select(e => e.ClassLabel!.Value).Distinct().Order().ToList();
        if (labels.Count > 0) return labels.Select(l => Articles.Fix($"a photo of a {FashionMnistClasses.CaptionNounOf(l)}")).ToList();
        return dataset.Train.Select(e => e.Caption).Distinct().Take(8).ToList();
    }

    static void WriteSummary(RunDirectory run, RunConfig config, TrainingJobResult r, ProcessGroup group)
    {
        var s = r.Summary;
        new RunSummary(config.Name, config.Hash(), s.Steps, s.ResumedFrom, s.SkippedSteps, s.FinalLoss, s.MeanLossLast100,
            s.Elapsed.TotalSeconds, s.MedianSecondsPerStep, s.ImagesPerSecond, s.PeakRssBytes / (1024.0 * 1024.0),
            r.TrainImages, r.DistinctCaptions, r.TextEncodeTime.TotalSeconds, config.SelectiveOrDefault.Arm.ToName(), config.InitWeightsPath(),
            r.ProjectionTime.TotalSeconds, s.Elapsed.TotalSeconds > 0 ? r.ProjectionTime.TotalSeconds / s.Elapsed.TotalSeconds : 0,
            r.Certificate?.Passed, r.Certificate?.WorstShare, get_num_threads(), $"{Environment.ProcessorCount} cores, {Environment.OSVersion}",
            // Only a data-parallel run names its ranks: a one-process run's summary.json stays as it was.
            group.Size > 1 ? group.Size : null, group.Size > 1 ? s.AllreduceTime.TotalSeconds : null)
            .Save(run);
    }
}
