using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Evaluation.Metrics;

/// <summary>
/// Fréchet distance between Gaussians fitted to two feature sets:
/// ‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^{1/2}). With ResNet18 or Inception features this is "FID".
/// </summary>
/// <remarks>
/// Tr((Σ1 Σ2)^{1/2}) is computed as Σ √λ over the eigenvalues of the symmetric PSD matrix Σ1^{1/2} Σ2 Σ1^{1/2}
/// (similar to Σ1 Σ2, so same eigenvalues), with symmetric eigendecompositions in float64 and tiny negative
/// eigenvalues from rounding clamped to 0. Unlike scipy's sqrtm this never produces complex parts and works for
/// singular covariances (fewer samples than dimensions). The estimate is biased upward for finite samples, the
/// more so the smaller N is relative to the dimension: compare numbers only at equal sample counts.
/// </remarks>
public static class FrechetDistance
{
    public static double Compute(IReadOnlyList<float[]> a, IReadOnlyList<float[]> b) =>
        Compute(GaussianFit.Of(a, "first feature set"), GaussianFit.Of(b, "second feature set"));

    public static double Compute(GaussianFit a, GaussianFit b)
    {
        FeatureMatrix.RequireSameDimension(a.Dimension, b.Dimension, "first features", "second features");
        using var scope = NewDisposeScope();
        var meanGap = (a.MeanTensor() - b.MeanTensor()).square().sum().ToDouble();
        var sigmaA = a.CovarianceTensor();
        var sigmaB = b.CovarianceTensor();
        var rootA = SymmetricSquareRoot(sigmaA);
        var inner = rootA.matmul(sigmaB).matmul(rootA);
        var eigenvalues = linalg.eigvalsh((inner + inner.t()) / 2);
        var traceOfRoot = eigenvalues.clamp_min(0).sqrt().sum().ToDouble();
        var distance = meanGap + sigmaA.trace().ToDouble() + sigmaB.trace().ToDouble() - 2 * traceOfRoot;
        // Rounding can leave a tiny negative for identical inputs; the distance itself is never negative.
        return Math.Max(0, distance);
    }

    private static Tensor SymmetricSquareRoot(Tensor symmetric)
    {
        var (values, vectors) = linalg.eigh((symmetric + symmetric.t()) / 2);
        return (vectors * values.clamp_min(0).sqrt().unsqueeze(0)).matmul(vectors.t());
    }
}
