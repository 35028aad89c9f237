using System.Diagnostics;
using System.Text.RegularExpressions;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Excise.Projection;

public enum ProjectionMode
{
    /// <summary>No projection.</summary>
    Off,
    /// <summary>The paper: after backward, G ← G − (G U) Uᵀ. Exact for SGD; Adam's per-coordinate scaling leaks.</summary>
    Gradient,
    /// <summary>Ours: after the optimizer step, W ← W − (W − W_before) U Uᵀ. Exact for any optimizer and weight decay.</summary>
    Update,
}

/// <summary>
/// Keeps the learned change of selected weights orthogonal to a concept subspace span(U), U [d,k] orthonormal.
/// A weight W [out, d] reads d-dimensional text states x through W·x; if (W − W₀)·U = 0, its response to any
/// direction in span(U) is what it was before training, so training cannot tie the concept's text to anything.
/// Each projection costs two thin matmuls, O(out·d·k); the d×d projector is never formed.
/// </summary>
public sealed class ConceptProjector : IDisposable
{
    public static readonly IReadOnlyList<string> DefaultPatterns = [@"attn2\.to_k\.weight$", @"attn2\.to_v\.weight$"];

    readonly Tensor basis;
    readonly Tensor basisT;
    readonly IReadOnlyList<(string Name, Parameter Param)> targets;
    readonly List<Tensor> before = new();
    readonly Stopwatch clock = new();

    public ProjectionMode Mode { get; }
    public IReadOnlyList<(string Name, Parameter Param)> Targets => targets;
    /// <summary>Time spent projecting, to report the overhead as a share of a step.</summary>
    public TimeSpan Elapsed => clock.Elapsed;

    public ConceptProjector(Tensor u, IReadOnlyList<(string Name, Parameter Param)> targets, ProjectionMode mode)
    {
        if (u.dim() != 2) throw new ArgumentException($"The concept basis must be a matrix [d, k], got [{string.Join(", ", u.shape)}].");
        long d = u.shape[0];
        foreach (var (name, p) in targets)
            if (p.shape[^1] != d)
                throw new ArgumentException($"Cannot project '{name}': its input width is {p.shape[^1]}, the concept basis has dimension {d}.");
        var device = targets.Count > 0 ? targets[0].Param.device : u.device;
        basis = u.detach().to(ScalarType.Float32, device).contiguous().DetachFromDisposeScope();
        basisT = basis.t().contiguous().DetachFromDisposeScope();
        this.targets = targets;
        Mode = mode;
        if (mode == ProjectionMode.Update)
            foreach (var (_, p) in targets) before.Add(empty_like(p).DetachFromDisposeScope());
    }

    /// <summary>
    /// Selects the parameters whose names match any pattern (regular expressions). Refuses a pattern that matches
    /// nothing and a match whose input width is not <paramref name="dimension"/>, naming both.
    /// </summary>
    public static IReadOnlyList<(string Name, Parameter Param)> SelectParameters(nn.Module model, IReadOnlyList<string> patterns, long dimension)
    {
        var all = model.named_parameters().ToList();
        var selected = new List<(string, Parameter)>();
        foreach (var pattern in patterns)
        {
            var regex = Configuration.NamePattern.Compile(pattern, "Projection pattern");
            var matches = all.Where(p => regex.IsMatch(p.name)).ToList();
            if (matches.Count == 0)
                throw new ArgumentException($"Projection pattern '{pattern}' matches no parameter of the model (e.g. '{all.FirstOrDefault(p => p.name.Contains("attn2")).name}').");
            foreach (var (name, p) in matches)
            {
                if (p.dim() < 2 || p.shape[^1] != dimension)
                    throw new ArgumentException($"Projection pattern '{pattern}' selects '{name}' [{string.Join(", ", p.shape)}], whose input width is not the concept basis dimension {dimension}.");
                if (!selected.Any(s => s.Item1 == name)) selected.Add((name, p));
            }
        }
        return selected;
    }

    /// <summary>Removes the concept component of a matrix's rows in place: M ← M − (M U) Uᵀ.</summary>
    public void ProjectRowsInPlace(Tensor m)
    {
        using var _ = NewDisposeScope();
        m.sub_(m.matmul(basis).matmul(basisT));
    }

    /// <summary>Projects the current values (for weights that start inside the complement, e.g. LoRA's A).</summary>
    public void ProjectValues(IEnumerable<Parameter> parameters)
    {
        using var _ = no_grad();
        foreach (var p in parameters) ProjectRowsInPlace(p);
    }

    /// <summary>Gradient mode, after backward: G ← G − (G U) Uᵀ for every target's gradient (the paper).</summary>
    public void ProjectGradients()
    {
        if (Mode != ProjectionMode.Gradient) return;
        clock.Start();
        using (no_grad())
            foreach (var (_, p) in targets)
                if (p.grad is { } g) ProjectRowsInPlace(g);
        clock.Stop();
    }

    /// <summary>Update mode, before the optimizer step: remembers the targets' weights.</summary>
    public void RememberWeights()
    {
        if (Mode != ProjectionMode.Update) return;
        clock.Start();
        using (no_grad())
            for (int i = 0; i < targets.Count; i++) before[i].copy_(targets[i].Param);
        clock.Stop();
    }

    /// <summary>Update mode, after the optimizer step: W ← W − (W − W_before) U Uᵀ, so the step's change avoids the concept.</summary>
    public void ProjectUpdate()
    {
        if (Mode != ProjectionMode.Update) return;
        clock.Start();
        using (no_grad())
        using (NewDisposeScope())
            for (int i = 0; i < targets.Count; i++)
            {
                var w = targets[i].Param;
                w.sub_((w - before[i]).matmul(basis).matmul(basisT));
            }
        clock.Stop();
    }

    public void Dispose()
    {
        basis.Dispose();
        basisT.Dispose();
        foreach (var t in before) t.Dispose();
    }
}
