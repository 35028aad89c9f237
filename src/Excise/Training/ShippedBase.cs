using System.Text.Json;
using Excise.Configuration;
using Excise.Data;
using Excise.Diffusion;
using Excise.Imaging;
using Excise.Models;
using Excise.Serialization;
using Excise.Text;
using Excise.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Training;

/// <summary>What <c>base.json</c> says about a base model shipped with the project, and how to check it.</summary>
/// <param name="ModelSha256">The pinned SHA-256 of model.safetensors (also in model.safetensors.sha256).</param>
/// <param name="Command">The command that trained it, from the repository root.</param>
/// <param name="Threads">libtorch threads it was trained with: float sums depend on them, so retraining gives these bytes only with the same count.</param>
/// <param name="FixedBatchLoss">Its denoising loss on <see cref="ShippedBase.FixedBatchLoss"/>'s batch when it was packed: what a load must reproduce.</param>
public sealed record ShippedBaseManifest(
    string ModelSha256,
    string Command,
    int Threads,
    int Steps,
    double FixedBatchLoss,
    string FixedBatch,
    DateTime PackedUtc);

/// <summary>
/// A trained base model as the project ships it (models/base): a run directory holding only what sampling and
/// fine-tuning need — config.json, unet_config.json, summary.json, preview.png and model.safetensors, the last pinned
/// by its SHA-256 (checked on every load, <see cref="Digest.VerifyPin"/>) — plus base.json (<see cref="ShippedBaseManifest"/>).
/// </summary>
public static class ShippedBase
{
    public const string ManifestFile = "base.json";
    const int FixedBatchSize = 64;
    const string FixedBatchText = "the first 64 Fashion-MNIST test images with the captions \"a photo of a {class}\", timesteps spread evenly over the schedule, noise from seed 0";

    static readonly string[] CopiedFiles = ["config.json", "unet_config.json", "summary.json", "preview.png"];

    /// <summary>Copies a finished run's sampling weights and the files that describe it into <paramref name="to"/>, pins the weights and records the fixed-batch loss.</summary>
    public static ShippedBaseManifest Pack(RunDirectory trained, string to, string command)
    {
        if (!File.Exists(trained.ModelPath)) throw new FileNotFoundException($"{trained.Root} has no model.safetensors: the run has not finished.", trained.ModelPath);
        var config = trained.LoadConfig();
        Directory.CreateDirectory(to);
        var shipped = new RunDirectory(to);
        foreach (var file in CopiedFiles.Where(f => File.Exists(Path.Combine(trained.Root, f))))
            File.Copy(Path.Combine(trained.Root, file), Path.Combine(to, file), overwrite: true);
        File.Copy(trained.ModelPath, shipped.ModelPath, overwrite: true);
        var digest = Digest.Pin(shipped.ModelPath);
        var manifest = new ShippedBaseManifest(digest, command, config.Threads, config.TrainingOrDefault.Steps, FixedBatchLoss(shipped), FixedBatchText, DateTime.UtcNow);
        AtomicFile.WriteAllText(Path.Combine(to, ManifestFile), JsonSerializer.Serialize(manifest, ConfigLoader.JsonOptions));
        return manifest;
    }

    public static ShippedBaseManifest ReadManifest(string directory)
    {
        var path = Path.Combine(directory, ManifestFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"{directory} is not a shipped base: {ManifestFile} is missing.", path);
        try
        {
            return JsonSerializer.Deserialize<ShippedBaseManifest>(File.ReadAllText(path), ConfigLoader.JsonOptions)
                ?? throw new InvalidDataException($"{path}: empty.");
        }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a shipped-base manifest: {e.Message}", e); }
    }

    /// <summary>
    /// Loads the shipped base (its pin checked) and recomputes the fixed-batch loss: a wrong file, a wrong loader or
    /// a wrong model definition moves it far more than <paramref name="relativeTolerance"/>, float threads do not.
    /// </summary>
    public static (ShippedBaseManifest Manifest, double Loss) Verify(string directory, double relativeTolerance = 1e-4)
    {
        var manifest = ReadManifest(directory);
        var run = new RunDirectory(directory);
        var pinned = Digest.VerifyPin(run.ModelPath)
            ?? throw new InvalidDataException($"{run.ModelPath}: a shipped base must be pinned ({Path.GetFileName(Digest.PinPath(run.ModelPath))} is missing).");
        if (pinned != manifest.ModelSha256)
            throw new InvalidDataException($"{directory}: {ManifestFile} records SHA-256 {manifest.ModelSha256}, the pin {pinned}: the manifest belongs to other weights.");
        double loss = FixedBatchLoss(run);
        if (Math.Abs(loss - manifest.FixedBatchLoss) > relativeTolerance * Math.Abs(manifest.FixedBatchLoss))
            throw new InvalidDataException($"{directory}: the fixed-batch loss is {loss:R}, {ManifestFile} recorded {manifest.FixedBatchLoss:R} when it was packed: " +
                                           "the model or its loader no longer computes what was shipped.");
        return (manifest, loss);
    }

    /// <summary>The run's ε-prediction loss on one fixed batch (<see cref="FixedBatchText"/>), in float32 on the CPU.</summary>
    public static double FixedBatchLoss(RunDirectory run)
    {
        var config = run.LoadConfig();
        var unetConfig = UNetConfig.FromDiffusersJson(File.ReadAllText(run.UNetConfigPath));
        using var scope = NewDisposeScope();
        using var model = new UNet2DConditionModel(unetConfig);
        ModuleWeights.Load(model, run.ModelPath);
        model.eval();
        using var encoder = MiniLmTextEncoder.Create(config.TextOrDefault.MaxLength);
        var items = FashionMnist.Load(DatasetSplit.Test, FixedBatchSize);
        var captions = items.Select(i => $"a photo of a {FashionMnistClasses.CaptionNounOf(i.Label)}").ToList();
        using var text = TextStateCache.Build(encoder, captions);
        var index = tensor(captions.Select(c => (long)text.IndexOf(c)).ToArray());
        var states = text.States.index_select(0, index);
        var mask = text.Mask.index_select(0, index);
        var x0 = DenoisingObjective.ToModelRange(
            ImageTensors.ToUint8Batch(items.Select(i => i.Image.FitTo(unetConfig.SampleSize, unetConfig.InChannels)).ToList()));
        var schedule = new NoiseSchedule(config.DiffusionOrDefault);
        var t = linspace(0, schedule.TrainTimesteps - 1, FixedBatchSize).round().to(ScalarType.Int64);
        using var generator = new Generator(0);
        var noise = randn(x0.shape, generator: generator);
        using var noGrad = no_grad();
        return DenoisingObjective.Loss(NoisePredictors.Of(model), schedule, x0, noise, t, states, mask).ToDouble();
    }
}
