using Excise.Configuration;
using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Projection;

/// <summary>
/// An orthonormal basis U ∈ R^{d×k} of a prohibited concept's subspace of text-encoder states. Weight updates of
/// cross-attention keys/values are projected onto the complement: ΔW ← ΔW − (ΔW U) Uᵀ (never via a d×d matrix).
/// Owns <see cref="U"/>; dispose the basis to free it.
/// </summary>
public sealed partial class ConceptBasis : IDisposable
{
    /// <summary>Orthonormality a basis must meet to be accepted: float32 storage of an exactly orthonormal matrix errs by ~1e-7.</summary>
    public const double OrthonormalityTolerance = 1e-4;

    /// <summary>float32 [d, k], orthonormal columns, on the CPU.</summary>
    public Tensor U { get; }
    public int Dimension => (int)U.shape[0];
    public int Rank => (int)U.shape[1];
    public ConceptBasisInfo Info { get; }

    /// <summary>Copies <paramref name="basis"/> to a contiguous CPU float32 tensor after checking shape and orthonormality.</summary>
    public ConceptBasis(Tensor basis, ConceptBasisInfo info)
    {
        if (basis.dim() != 2 || basis.shape[1] < 1 || basis.shape[1] > basis.shape[0])
            throw new ArgumentException($"A concept basis is a [d, k] matrix with 1 ≤ k ≤ d; got [{string.Join(", ", basis.shape)}].");
        if (info.Rank != basis.shape[1])
            throw new ArgumentException($"Basis info says rank {info.Rank} but the matrix has {basis.shape[1]} columns.");
        double error = SubspaceMath.OrthonormalityError(basis);
        if (!(error < OrthonormalityTolerance))
            throw new ArgumentException($"Basis columns are not orthonormal: max |UᵀU − I| = {error:G3} (tolerance {OrthonormalityTolerance:G1}).");
        // The basis outlives whatever dispose scope the caller is in; it is freed by Dispose.
        using (NewDisposeScope())
            U = basis.detach().to(ScalarType.Float32, CPU, copy: true).contiguous().MoveToOuterDisposeScope();
        U.DetachFromDisposeScope();
        Info = info;
    }

    /// <summary>
    /// The span of all inputs, re-orthonormalised: the first basis's columns come first unchanged, then each further
    /// basis contributes the directions of its residual (its columns minus their projection on what is already
    /// spanned) whose singular values exceed <paramref name="tolerance"/>; directions below it are numerically
    /// dependent and dropped. Inputs must come from the same encoder and mode. Info: concepts and prompts merged
    /// (duplicates removed), vector counts summed, <see cref="ConceptBasisInfo.EnergyKept"/> the smallest of the inputs'.
    /// </summary>
    public static ConceptBasis Union(IReadOnlyList<ConceptBasis> bases, double tolerance = 1e-6)
    {
        if (bases is null || bases.Count == 0) throw new ArgumentException("Union needs at least one basis.");
        if (!(tolerance > 0 && tolerance < 1)) throw new ArgumentOutOfRangeException(nameof(tolerance), tolerance, "Tolerance must be in (0, 1).");
        var first = bases[0];
        foreach (var other in bases.Skip(1))
        {
            if (other.Dimension != first.Dimension)
                throw new ArgumentException($"Cannot unite bases of {first.Dimension}- and {other.Dimension}-dimensional states.");
            if (other.Info.EncoderId != first.Info.EncoderId)
                throw new ArgumentException($"Cannot unite bases from different text encoders ('{first.Info.EncoderId}' and '{other.Info.EncoderId}'): their state spaces differ.");
            if (other.Info.Mode != first.Info.Mode)
                throw new ArgumentException($"Cannot unite a {first.Info.Mode.ToName()} basis with a {other.Info.Mode.ToName()} basis; rebuild both in one mode.");
        }

        using var scope = NewDisposeScope();
        var spanned = first.U.to_type(ScalarType.Float64);
        foreach (var other in bases.Skip(1))
        {
            var columns = other.U.to_type(ScalarType.Float64);
            var residual = columns - spanned.matmul(spanned.t().matmul(columns));
            residual -= spanned.matmul(spanned.t().matmul(residual)); // second pass: classical Gram-Schmidt loses orthogonality once
            var (left, singular, _) = linalg.svd(residual, fullMatrices: false);
            long independent = singular.gt(tolerance).sum().ToInt64();
            if (independent > 0) spanned = cat([spanned, left[.., ..(int)independent]], 1);
        }
        var stacked = cat(bases.Select(b => b.U.to_type(ScalarType.Float64)).ToArray(), 1);
        var stackedSingular = linalg.svdvals(stacked).data<double>().ToArray();

        var info = new ConceptBasisInfo(
            bases.SelectMany(b => b.Info.Concepts).Distinct(StringComparer.Ordinal).ToList(),
            bases.SelectMany(b => b.Info.Prompts).Distinct(StringComparer.Ordinal).ToList(),
            first.Info.EncoderId,
            first.Info.Mode,
            bases.Min(b => b.Info.EnergyKept),
            (int)spanned.shape[1],
            stackedSingular,
            bases.Sum(b => b.Info.VectorsCollected),
            bases.Sum(b => b.Info.VectorsKept));
        return new ConceptBasis(spanned, info);
    }

    public void Dispose() => U.Dispose();
}
