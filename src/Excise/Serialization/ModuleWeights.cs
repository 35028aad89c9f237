using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Serialization;

/// <summary>Saves and loads a module's state dict as safetensors, matching tensors strictly by name and shape.</summary>
public static class ModuleWeights
{
    public static void Save(nn.Module module, string path, IReadOnlyDictionary<string, string>? metadata = null) =>
        SafetensorsFile.Save(path, module.state_dict(), metadata);

    public static void Load(nn.Module module, string path, bool strict = true)
    {
        using var contents = SafetensorsFile.Load(path);
        Load(module, contents.Tensors, path, strict);
    }

    /// <summary>Copies <paramref name="tensors"/> into the module; refuses missing, unexpected or mis-shaped tensors before changing anything.</summary>
    public static void Load(nn.Module module, IReadOnlyDictionary<string, Tensor> tensors, string source, bool strict = true)
    {
        var state = module.state_dict();
        var missing = state.Keys.Where(k => !tensors.ContainsKey(k)).ToList();
        var unexpected = tensors.Keys.Where(k => !state.ContainsKey(k)).ToList();
        var misshaped = state.Where(kv => tensors.TryGetValue(kv.Key, out var t) && !t.shape.SequenceEqual(kv.Value.shape))
            .Select(kv => $"{kv.Key}: file [{string.Join(", ", tensors[kv.Key].shape)}], model [{string.Join(", ", kv.Value.shape)}]")
            .ToList();
        var problems = new List<string>();
        if (misshaped.Count > 0) problems.Add($"{misshaped.Count} tensor(s) with the wrong shape: {Summarise(misshaped)}");
        if (strict && missing.Count > 0) problems.Add($"{missing.Count} tensor(s) missing: {Summarise(missing)}");
        if (strict && unexpected.Count > 0) problems.Add($"{unexpected.Count} unexpected tensor(s): {Summarise(unexpected)}");
        if (problems.Count > 0)
            throw new InvalidDataException($"{source} does not fit the model: {string.Join("; ", problems)}.");

        using var _ = no_grad();
        foreach (var (name, target) in state)
            if (tensors.TryGetValue(name, out var source_))
                target.copy_(source_.to(target.dtype, target.device));
    }

    static string Summarise(IReadOnlyList<string> items) =>
        string.Join(", ", items.Take(8)) + (items.Count > 8 ? $", … ({items.Count - 8} more)" : "");
}
