using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Excise.Models;

public sealed partial class UNet2DConditionModel
{
    /// <summary>
    /// Loads weights by diffusers name. Every problem is collected first and reported in one
    /// <see cref="InvalidDataException"/> naming the file and the tensors: shape mismatches always, and with
    /// <paramref name="strict"/> also missing and unexpected names. Nothing is copied unless the file passes.
    /// </summary>
    public void LoadSafetensors(string path, bool strict = true)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: weights file not found.", path);
        Dictionary<string, Tensor> stored;
        try { stored = Safetensors.LoadStateDict(path); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidDataException($"{path}: not a readable safetensors file ({e.Message}).", e);
        }

        try
        {
            var own = state_dict();
            var problems = new List<string>();
            foreach (var (name, target) in own)
            {
                if (!stored.TryGetValue(name, out var source))
                {
                    if (strict) problems.Add($"missing: {name} {ShapeText(target)}");
                }
                else if (!source.shape.SequenceEqual(target.shape))
                    problems.Add($"shape mismatch: {name} is {ShapeText(source)} in the file, model needs {ShapeText(target)}");
            }
            if (strict) problems.AddRange(stored.Keys.Where(name => !own.ContainsKey(name)).Order().Select(name => $"unexpected: {name}"));
            if (problems.Count > 0)
                throw new InvalidDataException(
                    $"{path}: does not match the UNet built from its config ({problems.Count} problem(s)):{Environment.NewLine}  " +
                    string.Join(Environment.NewLine + "  ", problems));

            // copy_ converts dtype, so half-precision checkpoints load into the float32 model.
            using var _ = no_grad();
            foreach (var (name, target) in own)
                if (stored.TryGetValue(name, out var source)) target.copy_(source);
        }
        finally
        {
            foreach (var tensor in stored.Values) tensor.Dispose();
        }
    }

    /// <summary>Writes every parameter under its diffusers name (readable by diffusers / safetensors).</summary>
    public void SaveSafetensors(string path)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null) Directory.CreateDirectory(directory);
        this.save_safetensors(path);
    }

    private static string ShapeText(Tensor tensor) => $"[{string.Join(", ", tensor.shape)}]";
}
