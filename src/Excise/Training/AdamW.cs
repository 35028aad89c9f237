using Excise.Serialization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Excise.Training;

/// <summary>
/// AdamW with decoupled weight decay and bias correction, the same update as torch.optim.AdamW
/// (amsgrad off). Written out here so its state is plain named tensors that checkpoint to safetensors
/// and so projection hooks see exactly which tensors an optimizer step touches.
/// </summary>
public sealed class AdamW : IOptimizer
{
    readonly IReadOnlyList<(string Name, Parameter Param)> parameters;
    readonly Dictionary<string, (Tensor ExpAvg, Tensor ExpAvgSq)> moments = new();
    public double Beta1 { get; }
    public double Beta2 { get; }
    public double Epsilon { get; }
    public double WeightDecay { get; }
    public long StepCount { get; private set; }

    public AdamW(IReadOnlyList<(string Name, Parameter Param)> parameters, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8, double weightDecay = 0.01)
    {
        this.parameters = parameters;
        Beta1 = beta1; Beta2 = beta2; Epsilon = epsilon; WeightDecay = weightDecay;
        foreach (var (name, p) in parameters)
            moments[name] = (zeros_like(p).DetachFromDisposeScope(), zeros_like(p).DetachFromDisposeScope());
    }

    public void ZeroGrad()
    {
        foreach (var (_, p) in parameters)
            if (p.grad is { } g) { g.zero_(); }
    }

    public void Step(double learningRate)
    {
        StepCount++;
        double bc1 = 1 - Math.Pow(Beta1, StepCount);
        double bc2Sqrt = Math.Sqrt(1 - Math.Pow(Beta2, StepCount));
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        foreach (var (name, p) in parameters)
        {
            var g = p.grad;
            if (g is null) continue;
            var (m, v) = moments[name];
            if (WeightDecay != 0) p.mul_(1 - learningRate * WeightDecay);
            m.mul_(Beta1).add_(g, alpha: 1 - Beta1);
            v.mul_(Beta2).addcmul_(g, g, value: 1 - Beta2);
            var denom = v.sqrt().div_(bc2Sqrt).add_(Epsilon);
            p.addcdiv_(m, denom, value: -learningRate / bc1);
        }
    }

    public IEnumerable<KeyValuePair<string, Tensor>> StateTensors()
    {
        foreach (var (name, _) in parameters)
        {
            yield return new($"exp_avg.{name}", moments[name].ExpAvg);
            yield return new($"exp_avg_sq.{name}", moments[name].ExpAvgSq);
        }
    }

    public void LoadState(SafetensorsContents contents, long stepCount, string source)
    {
        using var _ = no_grad();
        foreach (var (name, p) in parameters)
        {
            var (m, v) = moments[name];
            m.copy_(Get(contents, $"exp_avg.{name}", p, source));
            v.copy_(Get(contents, $"exp_avg_sq.{name}", p, source));
        }
        StepCount = stepCount;
    }

    static Tensor Get(SafetensorsContents contents, string key, Tensor like, string source)
    {
        if (!contents.Tensors.TryGetValue(key, out var t))
            throw new InvalidDataException($"{source}: optimizer state '{key}' is missing; the checkpoint does not belong to this model.");
        if (!t.shape.SequenceEqual(like.shape))
            throw new InvalidDataException($"{source}: optimizer state '{key}' has shape [{string.Join(", ", t.shape)}], the parameter has [{string.Join(", ", like.shape)}].");
        return t;
    }

    public void Dispose()
    {
        foreach (var (m, v) in moments.Values) { m.Dispose(); v.Dispose(); }
        moments.Clear();
    }
}
