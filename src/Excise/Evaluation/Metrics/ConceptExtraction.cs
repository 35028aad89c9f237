using Excise.Data;
using Excise.Imaging;

namespace Excise.Evaluation.Metrics;

/// <param name="Rate">Share of images on which the detector fires (score ≥ threshold).</param>
public sealed record ExtractionResult(string DetectorId, double Threshold, ProportionEstimate Rate);

/// <summary>
/// Extraction rate: how often generated images carry the concept (e.g. the injected logo) according to a
/// detector. Its meaning depends on the detector's own false-positive and miss rates on real images, which
/// should be reported beside it; a rate at or below the detector's false-positive rate means "no extraction seen".
/// </summary>
public static class ConceptExtraction
{
    public static ExtractionResult Measure(IConceptDetector detector, IReadOnlyList<RasterImage> images, double z = ProportionEstimate.Z95)
    {
        ArgumentNullException.ThrowIfNull(detector);
        ArgumentNullException.ThrowIfNull(images);
        var scores = images.Count == 0 ? [] : detector.Scores(images);
        if (scores.Length != images.Count)
            throw new InvalidOperationException($"Detector '{detector.Id}' returned {scores.Length} scores for {images.Count} images.");
        return FromScores(detector.Id, detector.Threshold, scores, z);
    }

    /// <remarks>A NaN score never fires: an undecidable image does not count as an extraction.</remarks>
    public static ExtractionResult FromScores(string detectorId, double threshold, IReadOnlyList<double> scores, double z = ProportionEstimate.Z95) =>
        new(detectorId, threshold, ProportionEstimate.Wilson(scores.Select(score => score >= threshold), z));
}
