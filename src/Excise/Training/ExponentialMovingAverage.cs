using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Excise.Training;

/// <summary>
/// An EMA of the weights, with the usual warm-up (decay = min(d, (1 + n) / (10 + n))) so early
/// averages are not dominated by the random initialisation.
/// </summary>
public sealed class ExponentialMovingAverage : IDisposable
{
    readonly IReadOnlyList<(string Name, Parameter Param)> parameters;
    readonly Dictionary<string, Tensor> shadow = new();
    public double Decay { get; }
    public long Updates { get; private set; }

    public ExponentialMovingAverage(IReadOnlyList<(string Name, Parameter Param)> parameters, double decay)
    {
        this.parameters = parameters;
        Decay = decay;
        using var _ = no_grad();
        foreach (var (name, p) in parameters) shadow[name] = p.detach().clone().DetachFromDisposeScope();
    }

    public void Update()
    {
        Updates++;
        double d = Math.Min(Decay, (1.0 + Updates) / (10.0 + Updates));
        using var _ = no_grad();
        foreach (var (name, p) in parameters) shadow[name].lerp_(p, 1 - d);
    }

    /// <summary>The averaged weights under the model's parameter names (hooks may act on them in place).</summary>
    public IReadOnlyDictionary<string, Tensor> Averages => shadow;

    public void Load(IReadOnlyDictionary<string, Tensor> tensors, long updates, string source)
    {
        using var _ = no_grad();
        foreach (var (name, t) in shadow)
        {
            if (!tensors.TryGetValue(name, out var saved))
                throw new InvalidDataException($"{source}: EMA weight '{name}' is missing.");
            t.copy_(saved);
        }
        Updates = updates;
    }

    public void Dispose()
    {
        foreach (var t in shadow.Values) t.Dispose();
        shadow.Clear();
    }
}
