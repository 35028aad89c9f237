using System.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Projection;

/// <summary>The numerical steps of subspace building: de-duplication, SVD, rank choice, and subspace comparisons.</summary>
public static class SubspaceMath
{
    const double MachineEpsilon = 2.220446049250313e-16; // float64 ulp of 1; double.Epsilon is the smallest subnormal

    /// <summary>
    /// Keeps vectors in order, dropping any whose cosine to an already kept vector exceeds <paramref name="maxCosine"/>
    /// (repeated prompts, or [CLS]/[SEP] states that barely move between prompts), and any of negligible length
    /// (below 1e-9 of the longest; e.g. a contrastive difference at a position the concept does not reach).
    /// Near-duplicates add nothing to the span but would inflate their directions' share of the energy.
    /// </summary>
    public static IReadOnlyList<double[]> DropNearDuplicates(IReadOnlyList<double[]> vectors, double maxCosine)
    {
        if (vectors.Count == 0) return [];
        var norms = vectors.Select(v => Math.Sqrt(Dot(v, v))).ToArray();
        double negligible = norms.Max() * 1e-9;
        var kept = new List<double[]>();
        var keptUnit = new List<double[]>();
        for (int i = 0; i < vectors.Count; i++)
        {
            if (!(norms[i] > negligible)) continue;
            var unit = Array.ConvertAll(vectors[i], x => x / norms[i]);
            bool duplicate = false;
            foreach (var other in keptUnit)
                if (Dot(unit, other) > maxCosine) { duplicate = true; break; }
            if (duplicate) continue;
            kept.Add(vectors[i]);
            keptUnit.Add(unit);
        }
        return kept;
    }

    /// <summary>Singular values (descending) and right singular vectors [r, d] (float64) of the rows.</summary>
    public static (double[] SingularValues, Tensor RightVectors) Decompose(IReadOnlyList<double[]> rows)
    {
        if (rows.Count == 0) throw new ArgumentException("No vectors to decompose.");
        int width = rows[0].Length;
        var flat = new double[rows.Count * width];
        for (int i = 0; i < rows.Count; i++) rows[i].CopyTo(flat, i * width);
        using var scope = NewDisposeScope();
        using var matrix = tensor(flat, [rows.Count, width], ScalarType.Float64);
        var (_, s, vh) = linalg.svd(matrix, fullMatrices: false);
        var singularValues = s.data<double>().ToArray();
        return (singularValues, vh.MoveToOuterDisposeScope());
    }

    /// <summary>Directions whose singular value is distinguishable from rounding noise (the usual matrix-rank tolerance).</summary>
    public static int NumericalRank(IReadOnlyList<double> singularValues, int rows, int columns)
    {
        if (singularValues.Count == 0) return 0;
        double tolerance = singularValues[0] * Math.Max(rows, columns) * MachineEpsilon;
        return singularValues.Count(s => s > tolerance);
    }

    /// <summary>Smallest k whose leading σ² carry at least <paramref name="energy"/> of the total, capped at the numerical rank.</summary>
    public static int RankForEnergy(IReadOnlyList<double> singularValues, double energy, int numericalRank)
    {
        var fractions = CumulativeEnergy(singularValues);
        for (int k = 1; k <= numericalRank; k++)
            if (fractions[k - 1] >= energy) return k;
        return numericalRank;
    }

    /// <summary>Entry k-1 is the fraction of Σσ² in the leading k singular values.</summary>
    public static double[] CumulativeEnergy(IReadOnlyList<double> singularValues)
    {
        double total = singularValues.Sum(s => s * s);
        var fractions = new double[singularValues.Count];
        double running = 0;
        for (int i = 0; i < fractions.Length; i++)
        {
            running += singularValues[i] * singularValues[i];
            fractions[i] = total > 0 ? running / total : 0;
        }
        return fractions;
    }

    /// <summary>max |UᵀU − I| over all entries, computed in float64.</summary>
    public static double OrthonormalityError(Tensor basis)
    {
        using var scope = NewDisposeScope();
        var u = basis.to_type(ScalarType.Float64);
        var gram = u.t().matmul(u);
        return (gram - eye(gram.shape[0], dtype: ScalarType.Float64)).abs().max().ToDouble();
    }

    /// <summary>
    /// Cosines of the principal angles between span(U1) and span(U2) (singular values of U1ᵀU2, descending): 1 for a
    /// shared direction, 0 for orthogonal ones. Both bases must be orthonormal.
    /// </summary>
    public static double[] PrincipalCosines(Tensor basis1, Tensor basis2)
    {
        using var scope = NewDisposeScope();
        var overlap = basis1.to_type(ScalarType.Float64).t().matmul(basis2.to_type(ScalarType.Float64));
        return linalg.svdvals(overlap).clamp(0, 1).data<double>().ToArray();
    }

    /// <summary>Fraction of the vectors' total squared length that lies in span(U): Σ‖Uᵀv‖² / Σ‖v‖².</summary>
    public static double CapturedEnergyFraction(Tensor basis, IReadOnlyList<double[]> vectors)
    {
        if (vectors.Count == 0) throw new ArgumentException("No vectors to measure.");
        int width = vectors[0].Length;
        var flat = new double[vectors.Count * width];
        for (int i = 0; i < vectors.Count; i++) vectors[i].CopyTo(flat, i * width);
        using var scope = NewDisposeScope();
        var rows = tensor(flat, [vectors.Count, width], ScalarType.Float64);
        var coordinates = rows.matmul(basis.to_type(ScalarType.Float64));
        return coordinates.square().sum().ToDouble() / rows.square().sum().ToDouble();
    }

    internal static double Dot(double[] a, double[] b)
    {
        var sum = Vector<double>.Zero;
        int i = 0, lanes = Vector<double>.Count;
        for (; i <= a.Length - lanes; i += lanes) sum += new Vector<double>(a, i) * new Vector<double>(b, i);
        double total = Vector.Sum(sum);
        for (; i < a.Length; i++) total += a[i] * b[i];
        return total;
    }
}
