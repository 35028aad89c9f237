using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Evaluation.Metrics;

/// <param name="SubsetCount">Random subsets averaged over (torch-fidelity's default 100).</param>
/// <param name="SubsetSize">Rows per subset from each set; capped at the smaller set's size.</param>
/// <param name="MaxPrecomputedKernelEntries">
/// Kernel matrices of both whole sets (n_a² + n_b² + n_a·n_b doubles) are computed once when they have at most
/// this many entries (default ≈ 100 MB, e.g. 2000 vs 2000), so subsets only gather rows and columns; larger sets
/// compute each subset's kernels afresh. Same numbers either way.
/// </param>
public sealed record KidOptions(int SubsetCount = 100, int SubsetSize = 1000, int Seed = 0, long MaxPrecomputedKernelEntries = 3L * 2000 * 2000)
{
    public void Validate()
    {
        if (SubsetCount < 1) throw new ArgumentOutOfRangeException(nameof(SubsetCount), $"KID SubsetCount must be >= 1, got {SubsetCount}.");
        if (SubsetSize < 2) throw new ArgumentOutOfRangeException(nameof(SubsetSize), $"KID SubsetSize must be >= 2, got {SubsetSize}.");
    }
}

/// <param name="Mean">Mean over subsets of the unbiased MMD²; can be slightly negative when the sets match.</param>
/// <param name="Std">Population standard deviation over subsets (as torch-fidelity reports it).</param>
public sealed record KidEstimate(double Mean, double Std, int SubsetCount, int SubsetSize, int CountA, int CountB);

/// <summary>
/// Kernel Inception Distance (Bińkowski et al. 2018): the unbiased estimate of the squared MMD with the cubic
/// polynomial kernel k(x, y) = (xᵀy / d + 1)³, averaged over random subsets drawn without replacement, as in the
/// reference implementation (polynomial_mmd_averages). Unbiased, so unlike FID its expectation does not depend on
/// the sample count; only its spread does.
/// </summary>
public static class KernelInceptionDistance
{
    public static KidEstimate Compute(IReadOnlyList<float[]> a, IReadOnlyList<float[]> b, KidOptions? options = null)
    {
        options ??= new KidOptions();
        options.Validate();
        using var scope = NewDisposeScope();
        var x = FeatureMatrix.Stack(a, "first feature set", ScalarType.Float64, minimumRows: 2);
        var y = FeatureMatrix.Stack(b, "second feature set", ScalarType.Float64, minimumRows: 2);
        FeatureMatrix.RequireSameDimension((int)x.shape[1], (int)y.shape[1], "first features", "second features");
        int subsetSize = (int)Math.Min(options.SubsetSize, Math.Min(x.shape[0], y.shape[0]));

        long na = x.shape[0], nb = y.shape[0];
        var generator = new Generator((ulong)options.Seed);
        var draws = Enumerable.Range(0, options.SubsetCount)
            .Select(_ => (X: randperm(na, generator: generator)[..subsetSize], Y: randperm(nb, generator: generator)[..subsetSize]))
            .ToArray();
        var estimates = na * na + nb * nb + na * nb <= options.MaxPrecomputedKernelEntries
            ? FromWholeSetKernels(x, y, draws, subsetSize)
            : draws.Select(draw =>
            {
                using var subsetScope = NewDisposeScope();
                return UnbiasedMmdSquared(x.index_select(0, draw.X), y.index_select(0, draw.Y));
            }).ToArray();
        double mean = estimates.Average();
        double std = Math.Sqrt(estimates.Select(e => (e - mean) * (e - mean)).Average());
        return new KidEstimate(mean, std, options.SubsetCount, subsetSize, a.Count, b.Count);
    }

    private static Tensor Kernel(Tensor p, Tensor q) => (p.matmul(q.t()) / p.shape[1] + 1).pow(3);

    /// <summary>
    /// All subsets at once from the kernels of the whole sets: with 0/1 membership rows W, a subset's kernel sum
    /// is wᵀKw, so every subset costs one matrix product in total instead of three per subset.
    /// </summary>
    private static double[] FromWholeSetKernels(Tensor x, Tensor y, (Tensor X, Tensor Y)[] draws, int m)
    {
        var kxx = Kernel(x, x);
        var kyy = Kernel(y, y);
        var kxy = Kernel(x, y);
        Tensor Membership(long n, IEnumerable<Tensor> subsets)
        {
            var rows = subsets.ToArray();
            var membership = zeros(rows.Length, n, ScalarType.Float64);
            for (int s = 0; s < rows.Length; s++) membership[s].index_fill_(0, rows[s], 1.0);
            return membership;
        }
        var wx = Membership(x.shape[0], draws.Select(d => d.X));
        var wy = Membership(y.shape[0], draws.Select(d => d.Y));
        var withinX = (wx.matmul(kxx) * wx).sum(1) - wx.matmul(kxx.diagonal());
        var withinY = (wy.matmul(kyy) * wy).sum(1) - wy.matmul(kyy.diagonal());
        var across = (wx.matmul(kxy) * wy).sum(1);
        var mmd = (withinX + withinY) / (m * (m - 1.0)) - across * (2.0 / ((double)m * m));
        return mmd.data<double>().ToArray();
    }

    internal static double UnbiasedMmdSquared(Tensor x, Tensor y) => UnbiasedMmdSquared(Kernel(x, x), Kernel(y, y), Kernel(x, y));

    /// <summary>Unbiased MMD² from the kernel matrices of two equally sized samples: diagonal terms k(x, x) are left out of the within-set means.</summary>
    private static double UnbiasedMmdSquared(Tensor kxx, Tensor kyy, Tensor kxy)
    {
        long m = kxx.shape[0];
        double withinX = (kxx.sum() - kxx.diagonal().sum()).ToDouble();
        double withinY = (kyy.sum() - kyy.diagonal().sum()).ToDouble();
        double across = kxy.sum().ToDouble();
        return (withinX + withinY) / (m * (m - 1.0)) - 2 * across / ((double)m * m);
    }
}
