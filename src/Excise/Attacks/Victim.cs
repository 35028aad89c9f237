using Excise.Diffusion;
using Excise.Models;
using Excise.Text;
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

    /// <summary>Opens a finished run through <see cref="TextToImagePipeline.Open"/> and keeps its parts (owning them).</summary>
    public static Victim Open(RunDirectory run, string? weightsPath = null, string? deviceName = null)
    {
        var pipeline = TextToImagePipeline.Open(run, weightsPath, deviceName);
        return new Victim(pipeline.Model, pipeline.Encoder, pipeline.Schedule, pipeline.Device, run.LoadConfig(), run,
            Path.GetFullPath(weightsPath ?? run.ModelPath), ownsParts: true);
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
