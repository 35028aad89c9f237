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
    /// <summary>The weights were not trained on <see cref="Config"/>'s recipe: it only says what to attack them with (the floor).</summary>
    public bool RecipeIsForeign { get; init; }

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

    /// <summary>Opens a finished run through <see cref="RunDirectory.OpenPipeline"/> and keeps its parts (owning them).</summary>
    /// <param name="recipe">
    /// Attack the run's weights as if they had been trained on this data recipe (its concept and held-out images) instead
    /// of the run's own: how a model that never saw the concept (the base) is attacked exactly as the fine-tunes are. The
    /// victim then has no <see cref="Run"/>, because the run's training ids say nothing about that recipe's images.
    /// </param>
    public static Victim Open(RunDirectory run, string? weightsPath = null, string? deviceName = null, RunConfig? recipe = null)
    {
        // The attacks draw the UNet's own output as images and learn inversions from pixels, and the judges know the
        // built-in testbed's 32×32 images: on a latent (Stable Diffusion) run none of that holds yet, so say so up front.
        var config = run.LoadConfig();
        if (config.Pipeline is { } pipelineFolder)
            throw new NotSupportedException($"{run.Root} fine-tunes the Stable Diffusion pipeline {pipelineFolder}: attacks and evaluation do not run on " +
                                            "pipeline runs yet (they sample the UNet without the VAE, and the judges know only the built-in testbed). " +
                                            "Sample it with excise sample and check it with excise verify (docs/stable-diffusion.md).");
        var pipeline = run.OpenPipeline(weightsPath, deviceName);
        return new Victim(pipeline.Model, pipeline.Encoder, pipeline.Schedule, pipeline.Device, recipe ?? config,
            recipe is null ? run : null, Path.GetFullPath(weightsPath ?? run.ModelPath), ownsParts: true) { RecipeIsForeign = recipe is not null };
    }

    /// <summary>The concept phrase the victim's data carried (data.concept.phrase), if its config says.</summary>
    public string? ConceptPhrase => Config?.DataOrDefault.Concept?.Phrase;

    public void Dispose()
    {
        if (!ownsParts) return;
        Model.Dispose();
        Encoder.Dispose();
    }
}
