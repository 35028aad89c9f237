using Excise.Data;
using Excise.Imaging;

namespace Excise.Evaluation.Metrics;

/// <summary>
/// FID and KID between a reference (real) set and a generated set in one feature space. "FID" here is the
/// Fréchet distance of <see cref="ExtractorId"/>'s features (ResNet18 by default, not InceptionV3), so it is only
/// comparable with numbers made by the same extractor at the same sample counts.
/// </summary>
public sealed record DistributionMetrics(string ExtractorId, int ReferenceCount, int GeneratedCount, int Dimension, double Fid, KidEstimate? Kid)
{
    /// <summary>A set no larger than the dimension has a singular covariance; FID is then strongly biased upward.</summary>
    public bool FidIsRankDeficient => Math.Min(ReferenceCount, GeneratedCount) <= Dimension;

    /// <param name="kid">KID settings; null skips KID.</param>
    public static DistributionMetrics FromFeatures(string extractorId, IReadOnlyList<float[]> reference, IReadOnlyList<float[]> generated, KidOptions? kid = null)
    {
        var referenceFit = GaussianFit.Of(reference, "reference features");
        var generatedFit = GaussianFit.Of(generated, "generated features");
        double fid = FrechetDistance.Compute(referenceFit, generatedFit);
        var kidEstimate = kid is null ? null : KernelInceptionDistance.Compute(reference, generated, kid);
        return new DistributionMetrics(extractorId, reference.Count, generated.Count, referenceFit.Dimension, fid, kidEstimate);
    }
}
