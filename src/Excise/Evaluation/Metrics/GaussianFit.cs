using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Evaluation.Metrics;

/// <summary>
/// Mean and covariance of a feature set in float64, the sufficient statistics of the Fréchet distance; fit the
/// reference set once and compare many generated sets against it.
/// </summary>
public sealed record GaussianFit(int Count, int Dimension, double[] Mean, double[] Covariance)
{
    /// <summary>Fewer samples than dimensions: the covariance is singular and the distance is biased upward.</summary>
    public bool IsRankDeficient => Count <= Dimension;

    /// <summary>Needs at least 2 rows; the covariance uses the unbiased (N − 1) normaliser as numpy.cov does.</summary>
    public static GaussianFit Of(IReadOnlyList<float[]> features, string what = "features")
    {
        using var scope = NewDisposeScope();
        var x = FeatureMatrix.Stack(features, what, ScalarType.Float64, minimumRows: 2);
        int n = (int)x.shape[0], d = (int)x.shape[1];
        var mean = x.mean(new long[] { 0 });
        var centred = x - mean;
        var covariance = centred.t().matmul(centred) / (n - 1);
        return new GaussianFit(n, d, mean.data<double>().ToArray(), covariance.contiguous().data<double>().ToArray());
    }

    internal Tensor MeanTensor() => tensor(Mean, ScalarType.Float64);
    internal Tensor CovarianceTensor() => tensor(Covariance, new long[] { Dimension, Dimension }, ScalarType.Float64);
}
