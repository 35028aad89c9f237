using Excise.Data;
using Excise.Imaging;

namespace Excise.Evaluation;

/// <summary>Maps images to feature vectors (a judge's penultimate layer, ResNet18's pooled output, raw pixels).</summary>
public interface IImageFeatureExtractor
{
    /// <summary>Identifies the extractor and its weights, so cached features and reported numbers say what made them.</summary>
    string Id { get; }
    int Dimension { get; }
    /// <summary>One row of <see cref="Dimension"/> floats per image.</summary>
    float[][] Extract(IReadOnlyList<RasterImage> images);
}

/// <summary>Predicts a class per image (e.g. the Fashion-MNIST garment classes).</summary>
public interface IImageClassifier
{
    string Id { get; }
    IReadOnlyList<string> ClassNames { get; }
    int[] Predict(IReadOnlyList<RasterImage> images);
}

/// <summary>Scores whether each image carries the concept; fires when the score is at least <see cref="Threshold"/>.</summary>
public interface IConceptDetector
{
    string Id { get; }
    double Threshold { get; }
    double[] Scores(IReadOnlyList<RasterImage> images);
}
