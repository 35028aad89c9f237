using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Excise.Models.Lora;

/// <summary>One adapted layer: its full module name (e.g. <c>…attn2.to_k</c>) and the layer now in the model.</summary>
public sealed record LoraAdapter(string ModuleName, LoraLinear Layer)
{
    public string WeightName => ModuleName + ".weight";
    public string AName => ModuleName + ".lora_A.weight";
    public string BName => ModuleName + ".lora_B.weight";
}

/// <summary>
/// The adapters of one model, in state-dict order. Parameter names are the model's full state-dict names, so a
/// training hook that selects parameters by name (e.g. every <c>…attn2.to_k.lora_A.weight</c>) finds them directly.
/// Invalid after <see cref="Lora.Merge"/>: the adapters are then folded into the base weights.
/// </summary>
public sealed class LoraAdapters
{
    private readonly Dictionary<string, LoraAdapter> byName;

    internal LoraAdapters(UNetConfig baseConfig, LoraOptions options, IReadOnlyList<LoraAdapter> adapters)
    {
        BaseConfig = baseConfig;
        Options = options;
        Adapters = adapters;
        byName = adapters.ToDictionary(a => a.ModuleName);
    }

    public UNetConfig BaseConfig { get; }
    public LoraOptions Options { get; }
    public IReadOnlyList<LoraAdapter> Adapters { get; }
    public IEnumerable<string> ModuleNames => Adapters.Select(a => a.ModuleName);

    public LoraAdapter this[string moduleName] => byName.TryGetValue(moduleName, out var adapter) ? adapter
        : throw new KeyNotFoundException($"No LoRA adapter on '{moduleName}'; adapted modules: {string.Join(", ", byName.Keys)}.");

    /// <summary>Every A and B, named <c>{module}.lora_A.weight</c> / <c>{module}.lora_B.weight</c>.</summary>
    public IReadOnlyList<(string Name, Parameter Param)> Parameters()
    {
        ThrowIfMerged();
        return Adapters.SelectMany(a => new[] { (a.AName, a.Layer.A), (a.BName, a.Layer.B) }).ToList();
    }

    /// <summary>(α/r)·B·A of one adapted module, float64.</summary>
    public Tensor DeltaWeight(string moduleName) => this[moduleName].Layer.DeltaWeight();

    /// <summary><c>{module}.weight</c> → W + (α/r)·B·A for every adapted module, in the weight dtype, without
    /// touching the model; exactly the weights <see cref="Lora.Merge"/> would write.</summary>
    public Dictionary<string, Tensor> MergedWeights()
    {
        ThrowIfMerged();
        return Adapters.ToDictionary(a => a.WeightName, a => a.Layer.MergedWeight());
    }

    private void ThrowIfMerged()
    {
        if (Adapters.Any(a => a.Layer.IsMerged))
            throw new InvalidOperationException("These LoRA adapters were merged into the base weights; they are no longer in the model.");
    }
}
