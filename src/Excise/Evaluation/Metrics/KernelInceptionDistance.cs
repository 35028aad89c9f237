using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Evaluation.Metrics;

/// <param name="SubsetCount">Random subsets averaged over (torch-fidelity's default 100).</param>
/// <param name="SubsetSize">Rows per subset from each set; capped at the smaller set's size.</param>
public sealed record KidOptions(int SubsetCount = 100, int SubsetSize = 1000, int Seed = 0)
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

        var generator = new Generator((ulong)options.Seed);
        var estimates = new double[options.SubsetCount];
        for (int s = 0; s < options.SubsetCount; s++)
        {
            using var subsetScope = NewDisposeScope();
            var xs = x.index_select(0, randperm(x.shape[0], generator: generator)[..subsetSize]);
            var ys = y.index_select(0, randperm(y.shape[0], generator: generator)[..subsetSize]);
            estimates[s] = UnbiasedMmdSquared(xs, ys);
        }
        double mean = estimates.Average();
        double std = Math.Sqrt(estimates.Select(e => (e - mean) * (e - mean)).Average());
        return new KidEstimate(mean, std, options.SubsetCount, subsetSize, a.Count, b.Count);
    }

    /// <summary>Unbiased MMD² of two equally sized samples: diagonal terms k(x, x) are left out of the within-set means.</summary>
    internal static double UnbiasedMmdSquared(Tensor x, Tensor y)
    {
        long m = x.shape[0];
        double dimension = x.shape[1];
        Tensor Kernel(Tensor p, Tensor q) => (p.matmul(q.t()) / dimension + 1).pow(3);
        var kxx = Kernel(x, x);
        var kyy = Kernel(y, y);
        var kxy = Kernel(x, y);
        double withinX = (kxx.sum() - kxx.diagonal().sum()).ToDouble();
        double withinY = (kyy.sum() - kyy.diagonal().sum()).ToDouble();
        double across = kxy.sum().ToDouble();
        return (withinX + withinY) / (m * (m - 1.0)) - 2 * across / ((double)m * m);
    }
}
