using System.Diagnostics;
using System.Globalization;
using Excise.Data;
using Excise.Evaluation.Metrics;
using Excise.Training;
using Excise.Torch;
using TorchSharp;
using static TorchSharp.torch;
using Excise.Imaging;

namespace Excise.Evaluation.Judges;

/// <summary>
/// A binary CNN answering "does this image carry the injected logo?", trained on real Fashion-MNIST images stamped
/// with the run's settings (and imperfect variations of them) against the same images clean. Its threshold is chosen
/// on a validation split and stored with the weights.
/// </summary>
public sealed class ConceptDetector : IConceptDetector, IDisposable
{
    // Seed streams (SeedMixer): the training augmentation's stream of epoch e is AugmentationStream + e, the validation
    // set's is ValidationStream. Their values are what every cached detector was trained with.
    const long AugmentationStream = 400, ValidationStream = 900;

    public const string Kind = "concept-detector";
    const int InferenceBatch = 256;
    const string ThresholdKey = "excise.judge.threshold";

    private readonly JudgeNetwork network;
    private readonly Lock inference = new();

    private ConceptDetector(JudgeNetwork network, ConceptDetectorReport report, bool trainedNow, string? path)
    {
        this.network = network;
        Report = report;
        TrainedNow = trainedNow;
        Path = path;
    }

    public string Id => Report.Id;
    public double Threshold => Report.Threshold;
    public ConceptDetectorReport Report { get; private set; }
    /// <summary>True when this instance was trained in this process, false when it came from a file.</summary>
    public bool TrainedNow { get; }
    public string? Path { get; private set; }

    /// <summary>
    /// Version of the code that turns settings into weights (which images, how they are stamped, augmented and mixed
    /// with hard negatives, the loss, the threshold rule). Bump it whenever a change to that code would train different
    /// weights or pick another threshold from the same settings: it is part of the cache key and the file's metadata, so
    /// a detector trained by older code is never served. Not needed for pure refactors or new held-out figures.
    /// 1: garments stamped or clean, blur/noise/brightness/flat fields, the first 30,000 + 5,000 train images.
    /// 2: plus hard backgrounds (noise, smooth noise, degraded/inverted/fragmented garments, marks in the logo's corner),
    ///    stamped or not; images from the end of the train split, away from the fine-tunes and the adversary.
    /// </summary>
    public const int TrainingRecipeVersion = 2;

    public static string KeyFor(ConceptInjectionOptions injection, ConceptDetectorSettings settings) =>
        JudgeCache.Key(Kind, TrainingRecipeVersion, StampingSignature.Of(injection), settings);

    /// <summary>
    /// The train-split images a fine-tune with <paramref name="config"/> and its inversion adversary draw from are
    /// [0, end): the first data.limit train, then data.concept.held_out or the adversary's images are held out (all
    /// 60,000 without a limit). Zero when the run trains on another split or an image folder.
    /// </summary>
    public static int VictimTrainSplitEnd(RunConfig config, int inversionImages)
    {
        var recipe = config.DataOrDefault.ToRecipe();
        if (recipe.ImageFolder is not null || recipe.Split != DatasetSplit.Train) return 0;
        if (recipe.Limit is not { } limit) return FashionMnist.TrainCount;
        return (int)Math.Min(FashionMnist.TrainCount, (long)limit + Math.Max(recipe.HeldOutStampedCount, inversionImages));
    }

    /// <summary>
    /// Refuses to judge a run whose fine-tune or inversion adversary used images this detector trained or validated on:
    /// a judge must not have seen the images it judges.
    /// </summary>
    public void EnsureUnseenBy(RunConfig config, int inversionImages, string source)
    {
        int victimEnd = VictimTrainSplitEnd(config, inversionImages);
        int first = Report.Settings.FirstTrainSplitIndex;
        if (victimEnd > first)
            throw new InvalidOperationException(
                $"{source}: the fine-tune (data.limit {config.DataOrDefault.Limit}, data.concept.held_out {config.DataOrDefault.Concept?.HeldOut ?? 0}) " +
                $"and its inversion adversary ({inversionImages} held-out images) use train-split images 0..{victimEnd - 1}, but the concept detector " +
                $"{Id} trained on images {first}..{FashionMnist.TrainCount - 1}. Lower data.limit to at most {first - inversionImages}, " +
                "or train the detector on fewer images.");
    }

    /// <summary>Probability in [0, 1] that each image carries the logo.</summary>
    public double[] Scores(IReadOnlyList<RasterImage> images)
    {
        var scores = new double[images.Count];
        lock (inference)
            JudgeInputs.ForEachBatch(network, images, InferenceBatch, (batch, start) =>
            {
                var probabilities = network.forward(batch).squeeze(1).sigmoid().data<float>().ToArray();
                for (int i = 0; i < probabilities.Length; i++) scores[start + i] = probabilities[i];
            });
        return scores;
    }

    /// <summary>The logits of <paramref name="count"/> images already in the network's input form (32×32 in [−1, 1], one after another).</summary>
    internal float[] Logits(float[] unitImages, int count)
    {
        lock (inference)
        {
            network.eval();
            using var noGrad = no_grad();
            using var scope = NewDisposeScope();
            var logits = new float[count];
            for (int start = 0; start < count; start += InferenceBatch)
            {
                int n = Math.Min(InferenceBatch, count - start);
                using var batch = tensor(unitImages.AsSpan(start * JudgeInputs.PixelCount, n * JudgeInputs.PixelCount).ToArray(),
                                         new long[] { n, 1, JudgeInputs.Side, JudgeInputs.Side });
                network.forward(batch).squeeze(1).data<float>().ToArray().CopyTo(logits, start);
            }
            return logits;
        }
    }

    public bool[] Detect(IReadOnlyList<RasterImage> images) => Scores(images).Select(score => score >= Threshold).ToArray();

    /// <summary>Share of images in which the detector finds the logo.</summary>
    public double DetectionRate(IReadOnlyList<RasterImage> images) => images.Count == 0 ? double.NaN : Detect(images).Count(d => d) / (double)images.Count;

    /// <summary>The stamping a detector is trained for from a config's concept; refused when there is nothing to see.</summary>
    public static ConceptInjectionOptions StampingOf(ConceptConfig concept)
    {
        concept.Validate();
        var injection = concept.ToInjection();
        if (injection.Opacity <= 0) throw new ArgumentException("data.concept.opacity is 0: the concept is invisible, so no detector can learn it.");
        return injection;
    }

    /// <summary>The cached detector for this stamping and these settings, training and saving it first if the cache has none.</summary>
    public static ConceptDetector LoadOrTrain(string cacheDirectory, ConceptInjectionOptions injection, ConceptDetectorSettings settings,
        IProgress<JudgeTrainingProgress>? progress = null)
    {
        settings.Validate();
        var path = JudgeCache.WeightsPath(cacheDirectory, Kind, KeyFor(injection, settings));
        if (File.Exists(path)) return Load(path, injection, settings);
        var trained = Train(injection, settings, progress);
        trained.Save(path);
        return trained;
    }

    public static ConceptDetector Train(ConceptInjectionOptions injection, ConceptDetectorSettings settings, IProgress<JudgeTrainingProgress>? progress = null)
    {
        settings.Validate();
        var signature = StampingSignature.Of(injection);
        var clock = Stopwatch.StartNew();
        var examples = new DetectorExamples(injection, settings.Augmentation);
        // The end of the train split: the fine-tunes and the inversion adversary draw from its start (EnsureUnseenBy).
        var sources = FashionMnist.Load(DatasetSplit.Train, directory: settings.FashionMnistDirectory);
        if (sources.Count != FashionMnist.TrainCount)
            throw new InvalidDataException($"The Fashion-MNIST train split holds {sources.Count} images, not {FashionMnist.TrainCount}; the detector trains on its last {settings.TrainLimit} + {settings.ValidationCount}.");
        var train = sources.Skip(settings.FirstTrainSplitIndex).Take(settings.TrainLimit).ToArray();
        var validation = sources.Skip(settings.FirstTrainSplitIndex + settings.TrainLimit).ToArray();
        long seed = settings.Optimization.Seed;
        // A random placement differs per example id; a new id per epoch shows the detector new positions every epoch.
        bool randomPlacement = injection.Placement == LogoPlacement.Random;

        manual_seed(seed);
        var network = new JudgeNetwork(settings.Architecture, 1);
        try
        {
            double loss = JudgeTraining.Train(network, train.Length, settings.Optimization, (indices, epoch) =>
                {
                    var buffer = new float[indices.Length * JudgeInputs.PixelCount];
                    var targets = new float[indices.Length];
                    for (int i = 0; i < indices.Length; i++)
                    {
                        var item = train[indices[i]];
                        var id = item.Id(DatasetSplit.Train) + (randomPlacement ? $"#epoch{epoch}" : "");
                        var (image, stamped) = examples.Augmented(item.Image, id, new Random(SeedMixer.DeriveInt(seed, AugmentationStream + epoch, item.Index)));
                        JudgeInputs.WriteUnit(image, buffer, i * JudgeInputs.PixelCount);
                        targets[i] = stamped ? 1f : 0f;
                    }
                    return (tensor(buffer, new long[] { indices.Length, 1, JudgeInputs.Side, JudgeInputs.Side }), tensor(targets));
                },
                (logits, target) => nn.functional.binary_cross_entropy_with_logits(logits.squeeze(1), target), Kind, progress);
            double trainSeconds = clock.Elapsed.TotalSeconds;

            var key = KeyFor(injection, settings);
            var id = JudgeStore.IdFor(Kind, key, JudgeStore.WeightsHash(network.state_dict()));
            var provisional = new ConceptDetectorReport(id, key, settings, signature, train.Length, validation.Length, 0, 0.5,
                null!, [], [], loss, trainSeconds, double.NaN, DateTimeOffset.UtcNow);
            var detector = new ConceptDetector(network, provisional, trainedNow: true, path: null);

            progress?.Report(new JudgeTrainingProgress(Kind, "choosing threshold", 0, 0, loss));
            var validationSet = validation
                .Select(item => examples.Augmented(item.Image, item.Id(DatasetSplit.Train), new Random(SeedMixer.DeriveInt(seed, ValidationStream, item.Index))))
                .ToList();
            var validationLabels = validationSet.Select(v => v.Stamped).ToList();
            var validationScores = detector.Scores(validationSet.Select(v => v.Image).ToList());
            double threshold = BinaryMetrics.BestF1Threshold(validationScores, validationLabels);
            detector.Report = provisional with { Threshold = threshold, Validation = BinaryMetrics.Compute(validationScores, validationLabels, threshold) };

            progress?.Report(new JudgeTrainingProgress(Kind, "held-out evaluation", 0, 0, loss));
            detector.Report = detector.EvaluateHeldOut(injection, settings);
            return detector;
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    private ConceptDetectorReport EvaluateHeldOut(ConceptInjectionOptions injection, ConceptDetectorSettings settings)
    {
        var test = FashionMnist.Load(DatasetSplit.Test, settings.TestLimit, directory: settings.FashionMnistDirectory);
        var conditions = new List<DetectorCondition>();
        double inferenceMs = double.NaN;
        var examples = new DetectorExamples(injection, settings.Augmentation);
        foreach (var (name, description, images, labels) in examples.HeldOutConditions(test, settings.Optimization.Seed))
        {
            var clock = Stopwatch.StartNew();
            var scores = Scores(images);
            if (double.IsNaN(inferenceMs)) inferenceMs = clock.Elapsed.TotalMilliseconds * 1000.0 / images.Count;
            conditions.Add(new DetectorCondition(name, description, BinaryMetrics.Compute(scores, labels, Threshold)));
        }
        var offDistribution = new List<DetectorOffDistributionCondition>();
        foreach (var (name, description, clean, stamped) in examples.OffDistributionConditions(test, settings.Optimization.Seed))
            offDistribution.Add(new DetectorOffDistributionCondition(name, description,
                ProportionEstimate.Wilson(Detect(clean)), ProportionEstimate.Wilson(Detect(stamped))));
        return Report with { TestImages = test.Count, HeldOut = conditions, OffDistribution = offDistribution, InferenceMillisecondsPer1000 = inferenceMs };
    }

    public void Save(string path)
    {
        var heldOut = Report.Condition("default").Metrics;
        JudgeStore.Save(path, network, Kind, TrainingRecipeVersion, Report.Key, Report.Id, Report.Settings.Architecture, Report,
            new Dictionary<string, string>
            {
                [ThresholdKey] = Threshold.ToString("R", CultureInfo.InvariantCulture),
                ["excise.judge.seed"] = Report.Settings.Optimization.Seed.ToString(CultureInfo.InvariantCulture),
                ["excise.judge.stamping"] = Report.Stamping.ToString(),
                ["excise.judge.precision"] = heldOut.Precision.ToString("R", CultureInfo.InvariantCulture),
                ["excise.judge.recall"] = heldOut.Recall.ToString("R", CultureInfo.InvariantCulture),
                ["excise.judge.roc_auc"] = heldOut.RocAuc.ToString("R", CultureInfo.InvariantCulture),
            });
        Path = path;
    }

    /// <summary>Loads a saved detector.</summary>
    public static ConceptDetector Load(string path) => Load(path, expectedKey: null);

    /// <summary>Loads a saved detector, refusing one trained for another stamping or other settings.</summary>
    public static ConceptDetector Load(string path, ConceptInjectionOptions injection, ConceptDetectorSettings settings) =>
        Load(path, KeyFor(injection, settings));

    private static ConceptDetector Load(string path, string? expectedKey)
    {
        var (network, header) = JudgeStore.Load(path, Kind, TrainingRecipeVersion, expectedKey);
        try
        {
            if (network.Outputs != 1) throw new InvalidDataException($"{path}: concept detector has {network.Outputs} outputs, expected 1.");
            double threshold = header.RequiredNumber(ThresholdKey, path);
            if (threshold is < 0 or > 1) throw new InvalidDataException($"{path}: detector threshold {threshold} is outside [0, 1].");
            var report = header.RequiredJson<ConceptDetectorReport>(JudgeStore.ReportKey, path);
            if (report.Id != header.Id) throw new InvalidDataException($"{path}: report id '{report.Id}' differs from the file's id '{header.Id}'.");
            if (report.Threshold != threshold) throw new InvalidDataException($"{path}: report threshold {report.Threshold} differs from the stored threshold {threshold}.");
            return new ConceptDetector(network, report, trainedNow: false, path);
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    public void Dispose() => network.Dispose();
}
