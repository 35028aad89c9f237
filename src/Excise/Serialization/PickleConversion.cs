using System.Collections;
using static TorchSharp.torch;

namespace Excise.Serialization;

/// <summary>
/// The one place Excise reads a PyTorch pickle (torch.save's .pt/.pth/.ckpt/.bin), and only when the user opts in:
/// a pickle names the code that rebuilds it. TorchSharp.PyBridge's unpickler only rebuilds tensors and dictionaries,
/// but a file that claims to be a checkpoint is still untrusted input, so the weights go straight into a safetensors
/// file and everything else in Excise keeps reading safetensors only.
/// </summary>
public static class PickleConversion
{
    public sealed record Result(int Tensors, long Values, string? NestedUnder);

    /// <param name="allowPickle">The user's explicit opt-in; without it the conversion is refused with the reason.</param>
    public static Result ToSafetensors(string picklePath, string safetensorsPath, bool allowPickle)
    {
        if (!File.Exists(picklePath)) throw new FileNotFoundException($"{picklePath} not found.", picklePath);
        if (!allowPickle)
            throw new InvalidOperationException($"{picklePath}: reading a pickle is off unless you opt in (--allow-pickle), because a pickle can carry code. " +
                                                "Opt in only for files you trust, or convert them in a trusted Python environment.");
        using var scope = NewDisposeScope();
        IDictionary root;
        try { root = TorchSharp.PyBridge.PyTorchUnpickler.UnpickleStateDict(picklePath); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidDataException($"{picklePath} is not a PyTorch state dict this reader understands ({e.GetType().Name}: {e.Message}).", e);
        }
        var (tensors, nestedUnder) = StateDict(root, picklePath);
        SafetensorsFile.Save(safetensorsPath, tensors, new Dictionary<string, string> { ["converted_from"] = Path.GetFileName(picklePath) });
        return new Result(tensors.Count, tensors.Values.Sum(t => t.numel()), nestedUnder);
    }

    /// <summary>The tensors at the top level, or under the one key training frameworks nest them in ("state_dict", "model").</summary>
    static (Dictionary<string, Tensor> Tensors, string? NestedUnder) StateDict(IDictionary root, string path)
    {
        var top = Tensors(root);
        if (top.Count > 0) return (top, null);
        foreach (var key in new[] { "state_dict", "model", "module" })
            if (root.Contains(key) && root[key] is IDictionary nested && Tensors(nested) is { Count: > 0 } inner)
                return (inner, key);
        var keys = string.Join(", ", root.Keys.Cast<object>().Take(8));
        throw new InvalidDataException($"{path} holds no tensors at its top level or under state_dict/model/module (keys: {keys}).");
    }

    static Dictionary<string, Tensor> Tensors(IDictionary dictionary)
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (DictionaryEntry entry in dictionary)
            if (entry.Key is string name && entry.Value is Tensor tensor) result[name] = tensor.contiguous();
        return result;
    }
}
