using Excise.Data;

namespace Excise.Evaluation.Judges;

/// <summary>
/// How stamps are varied in training, so the detector also fires on imperfectly generated logos: smaller and fainter
/// than the run's stamp, displaced, blurred, noisy or half missing. Negatives get the same blur and noise, so neither
/// is a cue for the logo.
/// </summary>
/// <param name="MinSizeScale">Logo size is drawn from [MinSizeScale, 1] × the run's size.</param>
/// <param name="MinOpacityScale">Opacity is drawn from [MinOpacityScale, 1] × the run's opacity.</param>
/// <param name="MaxShift">Stamp displacement of up to this many pixels per axis (applied to half the stamps).</param>
/// <param name="BrightnessProbability">Share of garments scaled in brightness by [0.6, 1.2] before stamping (samples are often dimmer or brighter).</param>
/// <param name="FlatFieldProbability">Share of garments replaced by a flat grey field of random level, so a featureless image is not mistaken for a logo.</param>
public sealed record StampAugmentation(
    double MinSizeScale = 0.75,
    double MinOpacityScale = 0.6,
    int MaxShift = 2,
    double BlurProbability = 0.3,
    double MaxBlurSigma = 1.2,
    double NoiseProbability = 0.3,
    double MaxNoiseSigma = 0.15,
    double PartialProbability = 0.2,
    double BrightnessProbability = 0.2,
    double FlatFieldProbability = 0.1)
{
    public void Validate()
    {
        static void Unit(double value, string name, bool allowZero = true)
        {
            if (double.IsNaN(value) || value < 0 || value > 1 || (!allowZero && value == 0))
                throw new ArgumentException($"StampAugmentation.{name} must be in {(allowZero ? "[0" : "(0")}, 1], got {value}.");
        }
        Unit(MinSizeScale, nameof(MinSizeScale), allowZero: false);
        Unit(MinOpacityScale, nameof(MinOpacityScale), allowZero: false);
        Unit(BlurProbability, nameof(BlurProbability));
        Unit(NoiseProbability, nameof(NoiseProbability));
        Unit(PartialProbability, nameof(PartialProbability));
        Unit(BrightnessProbability, nameof(BrightnessProbability));
        Unit(FlatFieldProbability, nameof(FlatFieldProbability));
        if (MaxShift is < 0 or > 6) throw new ArgumentException($"StampAugmentation.MaxShift must be in 0..6 px, got {MaxShift}.");
        if (double.IsNaN(MaxBlurSigma) || MaxBlurSigma is < 0 or > 3) throw new ArgumentException($"StampAugmentation.MaxBlurSigma must be in [0, 3] px, got {MaxBlurSigma}.");
        if (double.IsNaN(MaxNoiseSigma) || MaxNoiseSigma is < 0 or > 1) throw new ArgumentException($"StampAugmentation.MaxNoiseSigma must be in [0, 1], got {MaxNoiseSigma}.");
    }
}

/// <summary>
/// How the concept detector is trained. Images come from the Fashion-MNIST train split: the first <see cref="TrainLimit"/>
/// train, the next <see cref="ValidationCount"/> choose the threshold; the first <see cref="TestLimit"/> test-split images
/// (each clean and stamped) give the held-out figures.
/// </summary>
public sealed record ConceptDetectorSettings(
    JudgeArchitecture Architecture,
    JudgeOptimization Optimization,
    StampAugmentation Augmentation,
    int TrainLimit = 30_000,
    int ValidationCount = 5_000,
    int TestLimit = 2_000,
    string? FashionMnistDirectory = null)
{
    public static ConceptDetectorSettings Default { get; } = new(JudgeArchitecture.Default,
        new JudgeOptimization(Epochs: 2, BatchSize: 128, LearningRate: 2e-3, Seed: 0), new StampAugmentation());

    public static ConceptDetectorSettings Quick { get; } = Default with
    {
        TrainLimit = 4000, ValidationCount = 1000, TestLimit = 500, Optimization = Default.Optimization with { Epochs = 1 },
    };

    public void Validate()
    {
        Architecture.Validate("ConceptDetectorSettings");
        Optimization.Validate("ConceptDetectorSettings");
        Augmentation.Validate();
        if (TrainLimit < 1 || ValidationCount < 1 || TestLimit < 1)
            throw new ArgumentException($"ConceptDetectorSettings: train ({TrainLimit}), validation ({ValidationCount}) and test ({TestLimit}) counts must be >= 1.");
        if ((long)TrainLimit + ValidationCount > FashionMnist.TrainCount)
            throw new ArgumentException($"ConceptDetectorSettings: train ({TrainLimit}) + validation ({ValidationCount}) images exceed the {FashionMnist.TrainCount} of the train split.");
        if (TestLimit > FashionMnist.TestCount)
            throw new ArgumentException($"ConceptDetectorSettings.TestLimit ({TestLimit}) exceeds the {FashionMnist.TestCount} test images.");
    }
}

/// <summary>The detector's held-out figures under one condition (every test image once clean, once stamped).</summary>
public sealed record DetectorCondition(string Name, string Description, BinaryMetrics Metrics);

/// <summary>Held-out results of a trained concept detector (also written as JSON next to its weights).</summary>
public sealed record ConceptDetectorReport(
    string Id,
    string Key,
    ConceptDetectorSettings Settings,
    StampingSignature Stamping,
    int TrainImages,
    int ValidationImages,
    int TestImages,
    double Threshold,
    BinaryMetrics Validation,
    IReadOnlyList<DetectorCondition> HeldOut,
    double FinalTrainLoss,
    double TrainSeconds,
    double InferenceMillisecondsPer1000,
    DateTimeOffset TrainedAt)
{
    public DetectorCondition Condition(string name) => HeldOut.FirstOrDefault(c => c.Name == name)
        ?? throw new KeyNotFoundException($"Detector report has no condition '{name}' (has: {string.Join(", ", HeldOut.Select(c => c.Name))}).");
}
