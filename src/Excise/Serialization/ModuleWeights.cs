using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Serialization;

/// <summary>Saves and loads a module's state dict as safetensors, matching tensors strictly by name and shape.</summary>
public static class ModuleWeights
{
    public static void Save(nn.Module module, string path, IReadOnlyDictionary<string, string>? metadata = null) =>
        SafetensorsFile.Save(path, module.state_dict(), metadata);

    /// <summary>Loads a safetensors file; a pinned file (<see cref="Digest.VerifyPin"/>) is refused unless its bytes match the pin.</summary>
    public static void Load(nn.Module module, string path, bool strict = true)
    {
        Digest.VerifyPin(path);
        using var contents = SafetensorsFile.Load(path);
        Load(module, contents.Tensors, path, strict);
    }

    /// <summary>
    /// Copies <paramref name="tensors"/> into the module by name. Every problem is collected first and reported in
    /// one <see cref="InvalidDataException"/> naming the source and each tensor: shape mismatches always, and with
    /// <paramref name="strict"/> also missing and unexpected names. Nothing is copied unless the whole set passes.
    /// copy_ converts dtype, so half-precision checkpoints load into a float32 model.
    /// </summary>
    public static void Load(nn.Module module, IReadOnlyDictionary<string, Tensor> tensors, string source, bool strict = true)
    {
        var own = module.state_dict();
        var problems = new List<string>();
        foreach (var (name, target) in own)
        {
            if (!tensors.TryGetValue(name, out var stored))
            {
                if (strict) problems.Add($"missing: {name} {ShapeText(target)}");
            }
            else if (!stored.shape.SequenceEqual(target.shape))
                problems.Add($"shape mismatch: {name} is {ShapeText(stored)} in the file, model needs {ShapeText(target)}");
        }
        if (strict) problems.AddRange(tensors.Keys.Where(name => !own.ContainsKey(name)).Order().Select(name => $"unexpected: {name}"));
        if (problems.Count > 0)
            throw new InvalidDataException(
                $"{source}: does not match the model ({problems.Count} problem(s)):{Environment.NewLine}  " +
                string.Join(Environment.NewLine + "  ", problems.Take(50)) + (problems.Count > 50 ? $"{Environment.NewLine}  … and {problems.Count - 50} more" : ""));

        using var _ = no_grad();
        foreach (var (name, target) in own)
            if (tensors.TryGetValue(name, out var stored)) target.copy_(stored);
    }

    static string ShapeText(Tensor tensor) => $"[{string.Join(", ", tensor.shape)}]";
}
