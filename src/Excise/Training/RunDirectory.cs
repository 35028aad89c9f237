using Excise.Diffusion;
using Excise.Models;
using Excise.Serialization;
using Excise.Text;
using Excise.Torch;
using TorchSharp;

namespace Excise.Training;

/// <summary>The files of one training run. Everything a later command needs (sample, resume, fine-tune) is here.</summary>
public sealed class RunDirectory
{
    public string Root { get; }
    public RunDirectory(string root) => Root = Path.GetFullPath(root);

    public string ConfigPath => Path.Combine(Root, "config.json");
    public string UNetConfigPath => Path.Combine(Root, "unet_config.json");
    public string MetricsPath => Path.Combine(Root, "metrics.jsonl");
    public string TextStatesPath => Path.Combine(Root, "text_states.safetensors");
    public string GroundTruthPath => Path.Combine(Root, "ground_truth.jsonl");
    /// <summary>The weights to sample with: the EMA weights when EMA is on, else the raw weights.</summary>
    public string ModelPath => Path.Combine(Root, "model.safetensors");
    public string PreviewPath => Path.Combine(Root, "preview.png");
    public string SummaryPath => Path.Combine(Root, "summary.json");
    public string CheckpointsDir => Path.Combine(Root, "checkpoints");
    /// <summary>The run's own copy of its concept basis, so a resume or a verify never depends on the original file.</summary>
    public string BasisPath => Path.Combine(Root, "concept_basis.safetensors");
    /// <summary>Initial weights of a projected run trained from scratch: the reference its certificate compares against.</summary>
    public string InitialWeightsPath => Path.Combine(Root, "initial_weights.safetensors");
    public string CertificatePath => Path.Combine(Root, "certificate.json");
    /// <summary>The trained LoRA adapters alone (model.safetensors holds them merged into the base).</summary>
    public string LoraPath => Path.Combine(Root, "lora.safetensors");

    /// <summary>A pipeline run's fine-tuned Stable Diffusion pipeline: the original folder with the trained UNet (the sampling weights).</summary>
    public string PipelinePath => Path.Combine(Root, "pipeline");
    /// <summary>A pipeline run's training images encoded by the VAE (<see cref="LatentCache"/>), so a resume does not encode again.</summary>
    public string LatentsPath => Path.Combine(Root, "latents.safetensors");

    public bool HasConfig => File.Exists(ConfigPath);

    public RunConfig LoadConfig() =>
        HasConfig ? RunConfig.Load(ConfigPath) : throw new FileNotFoundException($"{Root} is not a run directory: config.json is missing.", ConfigPath);

    /// <summary>Opens a finished run: its UNet config, its sampling weights (or a given weights file) and its text encoder.</summary>
    public TextToImagePipeline OpenPipeline(string? weightsPath = null, string? deviceName = null)
    {
        var config = LoadConfig();
        TorchRuntime.ConfigureThreads(config.Threads);
        var device = TorchRuntime.ParseDevice(deviceName ?? config.Device);
        var unetConfig = UNetConfig.FromDiffusersJson(File.ReadAllText(UNetConfigPath));
        var weights = weightsPath ?? ModelPath;
        if (!File.Exists(weights)) throw new FileNotFoundException($"{weights} not found: the run has not finished. Resume it, or pass a checkpoint's model.safetensors.", weights);
        var model = new UNet2DConditionModel(unetConfig);
        ITextEncoder? encoder = null;
        try
        {
            ModuleWeights.Load(model, weights);
            model.to(device);
            if (config.Pipeline is null)
            {
                encoder = MiniLmTextEncoder.Create(config.TextOrDefault.MaxLength);
                return new TextToImagePipeline(model, encoder, new NoiseSchedule(config.DiffusionOrDefault), device, ownsParts: true);
            }
            // The run's own copy of the pipeline when it has one (its VAE and text encoder are the original's, byte for byte).
            var folder = Directory.Exists(PipelinePath) ? Pipelines.StableDiffusionPipelineFolder.Open(PipelinePath) : config.OpenPipelineFolder()!;
            encoder = folder.LoadTextEncoder();
            var vae = folder.LoadVae();
            vae.to(device);
            return new TextToImagePipeline(model, encoder, new NoiseSchedule(config.DiffusionOrDefault), device, ownsParts: true, decoder: vae,
                schedulerSampling: folder.SchedulerConfig.Sampling);
        }
        catch
        {
            model.Dispose();
            encoder?.Dispose();
            throw;
        }
    }
}
