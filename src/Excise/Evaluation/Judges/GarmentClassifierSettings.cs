namespace Excise.Evaluation.Judges;

/// <summary>How the garment classifier is trained and on which Fashion-MNIST images (all of them decide the cache key).</summary>
/// <param name="TrainLimit">First N images of the train split; null = all 60,000.</param>
/// <param name="TestLimit">First N images of the test split for the held-out accuracy; null = all 10,000.</param>
/// <param name="MaxShift">Random translation of up to this many pixels per axis (the 2 px padding makes it free), for robustness to off-centre samples.</param>
/// <param name="LogoProbability">Share of training images given the built-in logo at a random place, size (8–12 px) and opacity (0.6–1),
/// so the classifier names the garment under a logo too: the samples it judges are expected to carry one. Labels are unchanged.</param>
public sealed record GarmentClassifierSettings(
    JudgeArchitecture Architecture,
    JudgeOptimization Optimization,
    int? TrainLimit = null,
    int? TestLimit = null,
    int MaxShift = 1,
    double LogoProbability = 0.3,
    string? FashionMnistDirectory = null)
{
    public static GarmentClassifierSettings Default { get; } = new(JudgeArchitecture.Default, new JudgeOptimization(Epochs: 3, BatchSize: 128, LearningRate: 2e-3, Seed: 0));

    /// <summary>Minutes → seconds: a smoke-test judge, far below the accuracy the experiment needs.</summary>
    public static GarmentClassifierSettings Quick { get; } = Default with { TrainLimit = 5000, TestLimit = 1000, Optimization = Default.Optimization with { Epochs = 1 } };

    public void Validate()
    {
        Architecture.Validate("GarmentClassifierSettings");
        Optimization.Validate("GarmentClassifierSettings");
        if (TrainLimit is < 1) throw new ArgumentException($"GarmentClassifierSettings.TrainLimit must be >= 1 (or null for all), got {TrainLimit}.");
        if (TestLimit is < 1) throw new ArgumentException($"GarmentClassifierSettings.TestLimit must be >= 1 (or null for all), got {TestLimit}.");
        if (double.IsNaN(LogoProbability) || LogoProbability is < 0 or > 1)
            throw new ArgumentException($"GarmentClassifierSettings.LogoProbability must be in [0, 1], got {LogoProbability}.");
        if (MaxShift is < 0 or > 4) throw new ArgumentException($"GarmentClassifierSettings.MaxShift must be in 0..4 px, got {MaxShift}.");
    }
}

/// <summary>Held-out results of a trained garment classifier (also written as JSON next to its weights).</summary>
/// <param name="StampedTestAccuracy">Accuracy on the same test images carrying the default stamp (built-in logo, bottom-right, size 0.4).</param>
public sealed record GarmentClassifierReport(
    string Id,
    string Key,
    GarmentClassifierSettings Settings,
    int TrainImages,
    int TestImages,
    double TestAccuracy,
    double StampedTestAccuracy,
    IReadOnlyList<double> ClassAccuracy,
    double FinalTrainLoss,
    double TrainSeconds,
    double InferenceMillisecondsPer1000,
    DateTimeOffset TrainedAt);
