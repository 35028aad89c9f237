using Excise.Models;
using Excise.Serialization;
using static TorchSharp.torch;

namespace Excise.Benchmarking;

/// <summary>What <see cref="ReferenceExport.Write"/> wrote.</summary>
public sealed record ReferenceExportResult(string Name, long Parameters, int Batch);

/// <summary>
/// A model's diffusers config, its seeded initial weights and one synthetic batch, for the PyTorch reference in
/// bench/reference to run the same step on the same numbers (parity and speed).
/// </summary>
public static class ReferenceExport
{
    public static ReferenceExportResult Write(BenchModel benchModel, string outDir, int? batch = null, long seed = 0)
    {
        var config = benchModel.Load();
        var unetConfig = config.ResolveUNetConfig();
        Directory.CreateDirectory(outDir);
        manual_seed(seed);
        using var model = new UNet2DConditionModel(unetConfig);
        using var inputs = new SyntheticBatch(unetConfig, batch ?? config.TrainingOrDefault.BatchSize, config.TextOrDefault.MaxLength, seed);
        AtomicFile.WriteAllText(Path.Combine(outDir, "unet_config.json"), unetConfig.ToDiffusersJson());
        ModuleWeights.Save(model, Path.Combine(outDir, "model.safetensors"));
        inputs.Save(Path.Combine(outDir, "inputs.safetensors"));
        return new ReferenceExportResult(benchModel.Name, model.ParameterCount, inputs.Batch);
    }
}
