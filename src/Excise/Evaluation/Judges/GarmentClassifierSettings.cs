namespace Excise.Evaluation.Judges;

/// <summary>How the garment classifier is trained and on which Fashion-MNIST images (all of them decide the cache key).</summary>
/// <param name="TrainLimit">First N images of the train split; null = all 60,000.</param>
/// <param name="TestLimit">First N images of the test split for the held-out accuracy; null = all 10,000.</param>
/// <param name="MaxShift">Random translation of up to this many pixels per axis (the 2 px padding makes it free), for robustness to off-centre samples.</param>
public sealed record GarmentClassifierSettings(
    JudgeArchitecture Architecture,
    JudgeOptimization Optimization,
    int? TrainLimit = null,
    int? TestLimit = null,
    int MaxShift = 2,
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
        if (MaxShift is < 0 or > 4) throw new ArgumentException($"GarmentClassifierSettings.MaxShift must be in 0..4 px, got {MaxShift}.");
    }
}

/// <summary>Held-out results of a trained garment classifier (also written as JSON next to its weights).</summary>
public sealed record GarmentClassifierReport(
    string Id,
    string Key,
    GarmentClassifierSettings Settings,
    int TrainImages,
    int TestImages,
    double TestAccuracy,
    IReadOnlyList<double> ClassAccuracy,
    double FinalTrainLoss,
    double TrainSeconds,
    double InferenceMillisecondsPer1000,
    DateTimeOffset TrainedAt);
