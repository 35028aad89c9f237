using Excise.Serialization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Excise.Training;

/// <summary>
/// SGD with heavy-ball momentum and decoupled weight decay (torch.optim.SGD with dampening 0, nesterov off).
/// A linear optimizer: a gradient orthogonal to a subspace gives an update orthogonal to it, which is why the
/// paper's gradient projection is exact with SGD and not with Adam.
/// </summary>
public sealed class Sgd : IOptimizer
{
    readonly IReadOnlyList<(string Name, Parameter Param)> parameters;
    readonly Dictionary<string, Tensor> velocity = new();
    public double Momentum { get; }
    public double WeightDecay { get; }
    public long StepCount { get; private set; }

    public Sgd(IReadOnlyList<(string Name, Parameter Param)> parameters, double momentum = 0.9, double weightDecay = 0)
    {
        this.parameters = parameters;
        Momentum = momentum;
        WeightDecay = weightDecay;
        foreach (var (name, p) in parameters) velocity[name] = zeros_like(p).DetachFromDisposeScope();
    }

    public void ZeroGrad()
    {
        foreach (var (_, p) in parameters) p.grad?.zero_();
    }

    public void Step(double learningRate)
    {
        StepCount++;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        foreach (var (name, p) in parameters)
        {
            var g = p.grad;
            if (g is null) continue;
            if (WeightDecay != 0) p.mul_(1 - learningRate * WeightDecay);
            var v = velocity[name];
            if (Momentum != 0)
            {
                if (StepCount == 1) v.copy_(g); else v.mul_(Momentum).add_(g);
                p.add_(v, alpha: -learningRate);
            }
            else p.add_(g, alpha: -learningRate);
        }
    }

    public IEnumerable<KeyValuePair<string, Tensor>> StateTensors() =>
        parameters.Select(p => new KeyValuePair<string, Tensor>($"momentum.{p.Name}", velocity[p.Name]));

    public void LoadState(SafetensorsContents contents, long stepCount, string source)
    {
        using var _ = no_grad();
        foreach (var (name, p) in parameters)
        {
            var key = $"momentum.{name}";
            if (!contents.Tensors.TryGetValue(key, out var t) || !t.shape.SequenceEqual(p.shape))
                throw new InvalidDataException($"{source}: SGD state '{key}' is missing or mis-shaped; the checkpoint does not belong to this model and optimizer.");
            velocity[name].copy_(t);
        }
        StepCount = stepCount;
    }

    public void Dispose()
    {
        foreach (var v in velocity.Values) v.Dispose();
        velocity.Clear();
    }
}
