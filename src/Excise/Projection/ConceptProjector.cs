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
    /// <summary>Ours: after the optimizer step, W ← W − (W − W₀) U Uᵀ, W₀ the weights training started from. Exact for any optimizer and weight decay.</summary>
    Update,
}

/// <summary>
/// Keeps the learned change of selected weights orthogonal to a concept subspace span(U), U [d,k] orthonormal.
/// A weight W [out, d] reads d-dimensional text states x through W·x; if (W − W₀)·U = 0, its response to any
/// direction in span(U) is what it was before training, so training cannot tie the concept's text to anything.
/// Each projection costs two thin matmuls, O(out·d·k); the d×d projector is never formed.
/// <para>
/// Update mode projects the whole change since the start, not each step's: W ← W − (W U − W₀ U) Uᵀ, with W₀ U kept
/// ([out, k], not W₀) and the products in float64. In exact arithmetic the two are the same, since the change before
/// the step already avoids span(U). In float32 they are not: each step's result is rounded in every direction, the
/// concept's included, and per-step projection never takes that back, so the rounding of every step piles up; at
/// Stable Diffusion's learning rate (1e-5) it was 5e-4 of the learned change, five times the certificate's tolerance.
/// Measured against the start, the concept component left after any step is the rounding of that one step's result,
/// within the float32 floor <see cref="ProjectionCertificate"/> states.
/// </para>
/// </summary>
public sealed class ConceptProjector : IDisposable
{
    public static readonly IReadOnlyList<string> DefaultPatterns = [@"attn2\.to_k\.weight$", @"attn2\.to_v\.weight$"];

    readonly Tensor basis;
    readonly Tensor basisT;
    readonly IReadOnlyList<(string Name, Parameter Param)> targets;
    readonly Tensor? basis64;
    readonly Tensor? basis64T;
    /// <summary>Update mode: each target's response to the concept directions when training started, W₀ U in float64 [out, k].</summary>
    readonly List<Tensor> startResponse = new();
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
        {
            basis64 = basis.to(ScalarType.Float64).DetachFromDisposeScope();
            basis64T = basis64.t().contiguous().DetachFromDisposeScope();
            StartFrom(name => targets.First(t => t.Name == name).Param);
        }
    }

    /// <summary>
    /// Update mode: the weights whose change the projection keeps out of the concept subspace (at construction, the
    /// targets' current values). <paramref name="startWeight"/> gives a target's start by name, or null for a target that
    /// starts inside the complement (W₀ U = 0, as LoRA's projected A factors), so a resumed run can give the same start
    /// from the file it was saved to.
    /// </summary>
    public void StartFrom(Func<string, Tensor?> startWeight)
    {
        if (Mode != ProjectionMode.Update) return;
        foreach (var t in startResponse) t.Dispose();
        startResponse.Clear();
        using var _ = no_grad();
        foreach (var (name, p) in targets)
        {
            using var scope = NewDisposeScope();
            var start = startWeight(name);
            if (start is not null && !start.shape.SequenceEqual(p.shape))
                throw new ArgumentException($"The start of '{name}' is [{string.Join(", ", start.shape)}], the weight is [{string.Join(", ", p.shape)}].");
            var response = start is null
                ? zeros([.. p.shape[..^1], basis.shape[1]], ScalarType.Float64, p.device) // W U's shape, for a weight of any rank
                : start.detach().to(ScalarType.Float64, p.device).matmul(basis64!);
            startResponse.Add(response.MoveToOuterDisposeScope().DetachFromDisposeScope());
        }
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

    /// <summary>Update mode, after the optimizer step: W ← W − (W U − W₀ U) Uᵀ, so the change since the start avoids the concept.</summary>
    public void ProjectUpdate()
    {
        if (Mode != ProjectionMode.Update) return;
        clock.Start();
        for (int i = 0; i < targets.Count; i++) ProjectChangeSinceStart(targets[i].Param, i);
        clock.Stop();
    }

    /// <summary>
    /// Update mode, after the weights' moving average is updated: the same projection on the averaged copies (by target
    /// name), whose own rounding would otherwise pile up step after step as the weights' did.
    /// </summary>
    public void ProjectAverages(IReadOnlyDictionary<string, Tensor> averages)
    {
        if (Mode != ProjectionMode.Update) return;
        clock.Start();
        for (int i = 0; i < targets.Count; i++)
            if (averages.TryGetValue(targets[i].Name, out var average)) ProjectChangeSinceStart(average, i);
        clock.Stop();
    }

    void ProjectChangeSinceStart(Tensor w, int target)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var w64 = w.to(ScalarType.Float64);
        var drift = w64.matmul(basis64!).sub_(startResponse[target]);
        w.copy_(w64.sub_(drift.matmul(basis64T!)));
    }

    public void Dispose()
    {
        basis.Dispose();
        basisT.Dispose();
        basis64?.Dispose();
        basis64T?.Dispose();
        foreach (var t in startResponse) t.Dispose();
    }
}
