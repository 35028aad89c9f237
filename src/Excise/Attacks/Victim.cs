using Excise.Diffusion;
using Excise.Models;
using Excise.Serialization;
using Excise.Text;
using Excise.Torch;
using Excise.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Attacks;

/// <summary>
/// The model under attack and everything needed to prompt it and to compute its training loss: the UNet (never
/// changed by an attack), its frozen text encoder, its noise schedule and, when opened from a run, the run's config.
/// </summary>
public sealed class Victim : IDisposable
{
    readonly bool ownsParts;

    public UNet2DConditionModel Model { get; }
    public ITextEncoder Encoder { get; }
    public NoiseSchedule Schedule { get; }
    public Device Device { get; }
    /// <summary>The victim run's config (its data.concept defines the held-out images of textual inversion); null for bare parts.</summary>
    public RunConfig? Config { get; }
    public RunDirectory? Run { get; }
    public string? WeightsPath { get; }

    public Victim(UNet2DConditionModel model, ITextEncoder encoder, NoiseSchedule schedule, Device device,
                  RunConfig? config = null, RunDirectory? run = null, string? weightsPath = null, bool ownsParts = false)
    {
        if (model.Config.CrossAttentionDim != encoder.Width)
            throw new ArgumentException($"The UNet's cross_attention_dim ({model.Config.CrossAttentionDim}) differs from the text encoder's width ({encoder.Width}).");
        Model = model;
        Encoder = encoder;
        Schedule = schedule;
        Device = device;
        Config = config;
        Run = run;
        WeightsPath = weightsPath;
        this.ownsParts = ownsParts;
    }

    /// <summary>Opens a finished run like <see cref="TextToImagePipeline.Open"/>, keeping the parts an attack needs.</summary>
    public static Victim Open(RunDirectory run, string? weightsPath = null, string? deviceName = null)
    {
        var config = run.LoadConfig();
        TorchRuntime.ConfigureThreads(config.Threads);
        var device = TorchRuntime.ParseDevice(deviceName ?? config.Device);
        var weights = weightsPath ?? run.ModelPath;
        if (!File.Exists(weights)) throw new FileNotFoundException($"{weights} not found: the run has not finished. Resume it, or pass a checkpoint's model.safetensors.", weights);
        var model = new UNet2DConditionModel(UNetConfig.FromDiffusersJson(File.ReadAllText(run.UNetConfigPath)));
        try
        {
            ModuleWeights.Load(model, weights);
            model.to(device);
            var encoder = MiniLmTextEncoder.Create(config.TextOrDefault.MaxLength);
            return new Victim(model, encoder, new NoiseSchedule(config.DiffusionOrDefault), device, config, run, Path.GetFullPath(weights), ownsParts: true);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The concept phrase the victim's data carried (data.concept.phrase), if its config says.</summary>
    public string? ConceptPhrase => Config?.DataOrDefault.Concept?.Phrase;

    /// <summary>A pipeline over the same parts (it does not own them).</summary>
    public TextToImagePipeline Pipeline() => new(Model, Encoder, Schedule, Device);

    public void Dispose()
    {
        if (!ownsParts) return;
        Model.Dispose();
        Encoder.Dispose();
    }
}
