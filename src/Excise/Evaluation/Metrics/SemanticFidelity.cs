using Excise.Data;
using Excise.Imaging;

namespace Excise.Evaluation.Metrics;

public sealed record ClassFidelity(int ClassIndex, string ClassName, ProportionEstimate Estimate);

/// <summary>Share of generated images the classifier assigns to the prompted class, overall and per prompted class.</summary>
/// <param name="PerClass">Only classes that were prompted at least once, in class order.</param>
public sealed record SemanticFidelityResult(string ClassifierId, ProportionEstimate Overall, IReadOnlyList<ClassFidelity> PerClass);

/// <summary>
/// Semantic fidelity: does "a photo of a sneaker" produce something a garment classifier calls a sneaker?
/// Bounded above by the classifier's own accuracy on real images, which should be reported beside it.
/// </summary>
public static class SemanticFidelity
{
    /// <param name="promptedClasses">The class each image was prompted with (index into the classifier's class names).</param>
    public static SemanticFidelityResult Measure(IImageClassifier classifier, IReadOnlyList<RasterImage> images,
        IReadOnlyList<int> promptedClasses, double z = ProportionEstimate.Z95)
    {
        ArgumentNullException.ThrowIfNull(classifier);
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(promptedClasses);
        if (images.Count != promptedClasses.Count)
            throw new ArgumentException($"{images.Count} images but {promptedClasses.Count} prompted classes; give one class per image.");
        var predicted = images.Count == 0 ? [] : classifier.Predict(images);
        return FromPredictions(classifier.Id, classifier.ClassNames, predicted, promptedClasses, z);
    }

    /// <summary>Scores predictions already made (e.g. cached), against the prompted classes.</summary>
    public static SemanticFidelityResult FromPredictions(string classifierId, IReadOnlyList<string> classNames,
        IReadOnlyList<int> predicted, IReadOnlyList<int> promptedClasses, double z = ProportionEstimate.Z95)
    {
        if (predicted.Count != promptedClasses.Count)
            throw new ArgumentException($"Classifier '{classifierId}' returned {predicted.Count} predictions for {promptedClasses.Count} images.");
        for (int i = 0; i < promptedClasses.Count; i++)
            if (promptedClasses[i] < 0 || promptedClasses[i] >= classNames.Count)
                throw new ArgumentOutOfRangeException(nameof(promptedClasses),
                    $"Image {i} was prompted with class {promptedClasses[i]}, but classifier '{classifierId}' has {classNames.Count} classes.");

        var overall = ProportionEstimate.Wilson(predicted.Select((p, i) => p == promptedClasses[i]), z);
        var perClass = Enumerable.Range(0, promptedClasses.Count)
            .GroupBy(i => promptedClasses[i])
            .OrderBy(group => group.Key)
            .Select(group => new ClassFidelity(group.Key, classNames[group.Key],
                ProportionEstimate.Wilson(group.Select(i => predicted[i] == group.Key), z)))
            .ToArray();
        return new SemanticFidelityResult(classifierId, overall, perClass);
    }
}
