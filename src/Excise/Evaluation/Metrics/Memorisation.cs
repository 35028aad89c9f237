using Excise.Data;
using Excise.Imaging;

namespace Excise.Evaluation.Metrics;

/// <param name="CopyDistance">A generated sample whose nearest training distance is below this counts as a copy.</param>
/// <param name="RatioThreshold">Nearest / second-nearest below this counts as a near-copy (α = 1/3, after Carlini et al. 2023).</param>
/// <param name="NormaliseFeatures">L2-normalise rows before measuring (used for network features, not for pixels).</param>
/// <param name="TopCount">How many of the most memorised samples to return with their training neighbours.</param>
/// <param name="ChunkSize">Generated samples per distance block (memory ≈ ChunkSize × training count × 4 bytes, twice).</param>
public sealed record MemorisationOptions(
    double CopyDistance,
    double RatioThreshold = 1.0 / 3,
    bool NormaliseFeatures = false,
    int TopCount = 16,
    int ChunkSize = 256)
{
    /// <summary>Raw [0, 1] pixels: a copy differs by less than 0.05 RMS per pixel (about 13 grey levels).</summary>
    public static MemorisationOptions ForPixels(int valuesPerImage) => new(CopyDistance: 0.05 * Math.Sqrt(valuesPerImage));

    /// <summary>L2-normalised network features: a copy has cosine similarity above 0.995 (distance 0.1).</summary>
    public static MemorisationOptions ForFeatures() => new(CopyDistance: 0.1, NormaliseFeatures: true);

    public void Validate()
    {
        if (!(CopyDistance > 0) || double.IsInfinity(CopyDistance))
            throw new ArgumentOutOfRangeException(nameof(CopyDistance), $"Memorisation CopyDistance must be positive and finite, got {CopyDistance}.");
        if (!(RatioThreshold > 0 && RatioThreshold <= 1))
            throw new ArgumentOutOfRangeException(nameof(RatioThreshold), $"Memorisation RatioThreshold must be in (0, 1], got {RatioThreshold}.");
        if (TopCount < 0) throw new ArgumentOutOfRangeException(nameof(TopCount), $"Memorisation TopCount must be >= 0, got {TopCount}.");
        if (ChunkSize < 1) throw new ArgumentOutOfRangeException(nameof(ChunkSize), $"Memorisation ChunkSize must be >= 1, got {ChunkSize}.");
    }
}

/// <param name="Space">What the distances were measured in (an extractor id, plus "L2-normalised" when applied).</param>
/// <param name="NearestDistance">Distribution of each generated sample's distance to its nearest training sample.</param>
/// <param name="NearestRatio">Distribution of nearest / second-nearest distance.</param>
/// <param name="Copies">Share with nearest distance below <see cref="MemorisationOptions.CopyDistance"/>.</param>
/// <param name="NearCopies">Share with ratio below <see cref="MemorisationOptions.RatioThreshold"/>.</param>
/// <param name="MostMemorised">Lowest ratio first (ties: lowest distance), with their training neighbours' indices.</param>
public sealed record MemorisationResult(
    string Space, int GeneratedCount, int TrainingCount, double CopyDistance, double RatioThreshold,
    DistanceSummary NearestDistance, DistanceSummary NearestRatio,
    ProportionEstimate Copies, ProportionEstimate NearCopies,
    IReadOnlyList<NeighbourMatch> MostMemorised);

/// <summary>
/// Memorisation probe: how close each generated image comes to its nearest training image. A sample is a
/// near-copy when its nearest training image is much closer than the second nearest (ratio rule, robust to a
/// space's scale and to dense regions), and a copy when the nearest distance itself is tiny.
/// </summary>
public static class Memorisation
{
    /// <summary>Embeds both sets with <paramref name="extractor"/> and analyses them. For 60k training images, embed once and call <see cref="Analyse"/>.</summary>
    public static MemorisationResult Measure(IImageFeatureExtractor extractor, IReadOnlyList<RasterImage> generated,
        IReadOnlyList<RasterImage> training, MemorisationOptions options)
    {
        ArgumentNullException.ThrowIfNull(extractor);
        return Analyse(extractor.Id, extractor.Extract(generated), extractor.Extract(training), options);
    }

    public static MemorisationResult Analyse(string space, IReadOnlyList<float[]> generated, IReadOnlyList<float[]> training, MemorisationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (generated.Count == 0) throw new ArgumentException($"{space}: no generated samples to probe for memorisation.");
        var matches = NearestNeighbours.Search(generated, training, options.NormaliseFeatures, options.ChunkSize);
        var mostMemorised = matches.OrderBy(m => m.Ratio).ThenBy(m => m.NearestDistance).ThenBy(m => m.GeneratedIndex)
            .Take(options.TopCount).ToArray();
        return new MemorisationResult(
            options.NormaliseFeatures ? $"{space}, L2-normalised" : space,
            generated.Count, training.Count, options.CopyDistance, options.RatioThreshold,
            DistanceSummary.Of(matches.Select(m => m.NearestDistance)),
            DistanceSummary.Of(matches.Select(m => m.Ratio)),
            ProportionEstimate.Wilson(matches.Select(m => m.NearestDistance < options.CopyDistance)),
            ProportionEstimate.Wilson(matches.Select(m => m.Ratio < options.RatioThreshold)),
            mostMemorised);
    }
}
