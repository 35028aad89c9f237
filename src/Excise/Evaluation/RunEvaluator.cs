using Excise.Configuration;
using System.Diagnostics;
using System.Text.Json;
using Excise.Attacks;
using Excise.Data;
using Excise.Evaluation.Features;
using Excise.Evaluation.Judges;
using Excise.Evaluation.Metrics;
using Excise.Serialization;
using Excise.Training;
using Excise.Imaging;
using Excise.Models;

namespace Excise.Evaluation;

/// <summary>What to run and how many images each number rests on.</summary>
/// <param name="ReferenceImages">Real Fashion-MNIST test images the in-domain FD/KID compare against.</param>
/// <param name="ResNetImages">Images per side for the ResNet18 FID (0 = skip; it costs ~50–130 ms an image here).</param>
/// <param name="MemorisationTrainImages">Training images searched for nearest neighbours (0 = the run's whole training set).</param>
public sealed record EvaluationSettings(
    IReadOnlyList<AttackKind> Attacks,
    AttackSettings Attack,
    string JudgeCache,
    int ReferenceImages = 1000,
    int ResNetImages = 200,
    int MemorisationTrainImages = 0,
    bool QuickJudges = false);

/// <param name="Inversion">How the adversary's learning went (inversion and its control; null for the other attacks).</param>
public sealed record AttackEvaluation(AttackKind Kind, MetricsReport Metrics, string OutputDirectory, AttackTiming Timing, TimeSpan JudgeTime,
                                     InversionReport? Inversion = null);

public sealed record RunEvaluation(string Run, string? Arm, string Concept, IReadOnlyList<AttackEvaluation> Attacks,
                                   string ClassifierId, string DetectorId, double DetectorThreshold)
{
    public string ToMarkdown() =>
        $"Evaluation of `{Run}` (arm {Arm ?? "?"}, concept \"{Concept}\"; classifier {ClassifierId}, detector {DetectorId} at threshold {DetectorThreshold:F3})\n\n"
        + MetricsReport.MarkdownTable(Attacks.Select(a => a.Metrics)) + "\n";

    public string ToJson() => JsonSerializer.Serialize(new
    {
        run = Run,
        arm = Arm,
        concept = Concept,
        classifier = ClassifierId,
        detector = DetectorId,
        detector_threshold = DetectorThreshold,
        attacks = Attacks.Select(a => new
        {
            kind = a.Kind.ToName(),
            output = a.OutputDirectory,
            attack_seconds = a.Timing.Total.TotalSeconds,
            judge_seconds = a.JudgeTime.TotalSeconds,
            metrics = JsonDocument.Parse(a.Metrics.ToJson()).RootElement,
        }),
    }, new JsonSerializerOptions { WriteIndented = true });
}

/// <summary>Real test images fitted to one model geometry, with their classifier and (if measured) ResNet18 features.</summary>
public sealed record ReferenceSet(IReadOnlyList<RasterImage> Images, IReadOnlyList<float[]> Features, IReadOnlyList<float[]>? ResNetFeatures);

/// <summary>
/// What every evaluation of one concept shares and is costly to build: the judges, the real reference images
/// and their features. The experiment builds it once and evaluates every arm against it.
/// </summary>
public sealed class EvaluationContext : IDisposable
{
    public GarmentClassifier Classifier { get; }
    public ConceptDetector Detector { get; }
    public ResNet18Features? ResNet { get; }

    readonly IReadOnlyList<RasterImage> realImages;
    readonly int resNetImages;
    readonly Dictionary<(int Size, int Channels), ReferenceSet> references = new();

    EvaluationContext(GarmentClassifier classifier, ConceptDetector detector, IReadOnlyList<RasterImage> realImages, ResNet18Features? resnet, int resNetImages)
    {
        Classifier = classifier; Detector = detector; ResNet = resnet;
        this.realImages = realImages;
        this.resNetImages = resNetImages;
    }

    /// <summary>
    /// The real test images fitted as a model of this size and channel count produces images, with their classifier (and
    /// ResNet18) features: what FD, KID and FID compare a run's images with. Featurised once per geometry.
    /// </summary>
    public ReferenceSet ReferenceAt(int size, int channels)
    {
        lock (references)
        {
            if (references.TryGetValue((size, channels), out var cached)) return cached;
            var images = realImages.Select(i => i.FitTo(size, channels)).ToList();
            var set = new ReferenceSet(images, Classifier.Extract(images), ResNet?.Extract(images.Take(resNetImages).ToList()));
            references[(size, channels)] = set;
            return set;
        }
    }

    /// <summary>Loads (or trains) the judges for <paramref name="concept"/>'s stamping and reads the reference images.</summary>
    public static EvaluationContext Create(EvaluationSettings settings, ConceptConfig concept, Action<string>? log = null,
                                           IProgress<JudgeTrainingProgress>? judgeProgress = null)
    {
        log ??= _ => { };
        log("Loading (or training) the judges…");
        var classifier = GarmentClassifier.LoadOrTrain(settings.JudgeCache, settings.QuickJudges ? GarmentClassifierSettings.Quick : GarmentClassifierSettings.Default, judgeProgress);
        ConceptDetector? detector = null;
        ResNet18Features? resnet = null;
        try
        {
            detector = ConceptDetector.LoadOrTrain(settings.JudgeCache, concept.ToInjection(),
                ConceptDetectorSettings.For(settings.QuickJudges), judgeProgress);
            var real = FashionMnist.Load(DatasetSplit.Test, settings.ReferenceImages).Select(i => i.Image).ToList();
            resnet = settings.ResNetImages > 0 ? new ResNet18Features() : null;
            return new EvaluationContext(classifier, detector, real, resnet, settings.ResNetImages);
        }
        catch
        {
            resnet?.Dispose();
            detector?.Dispose();
            classifier.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        ResNet?.Dispose();
        Detector.Dispose();
        Classifier.Dispose();
    }
}

/// <summary>
/// Attacks a trained run and judges what the attacks produce: extraction rate (detector), semantic fidelity
/// (classifier), in-domain FD/KID (classifier features) and ResNet18 FID against real test images, and
/// memorisation against the run's own training images (pixels and classifier features).
/// </summary>
public static class RunEvaluator
{
    public static RunEvaluation Evaluate(RunDirectory run, EvaluationSettings settings, string outputDirectory, Action<string>? log = null,
                                         IProgress<AttackProgress>? progress = null, CancellationToken cancel = default)
    {
        var concept = ConceptOf(run);
        using var context = EvaluationContext.Create(settings, concept, log);
        return Evaluate(context, run, settings, outputDirectory, log, progress, cancel);
    }

    public static ConceptConfig ConceptOf(RunDirectory run) =>
        run.LoadConfig().DataOrDefault.Concept ?? throw new InvalidDataException($"{run.ConfigPath} has no data.concept: nothing to evaluate extraction of.");

    /// <param name="attackDone">Called after each attack with its evaluation (the experiment's progress display).</param>
    /// <param name="recipe">
    /// The data recipe to judge the run's weights under, when it is not the run's own: the experiment evaluates the base
    /// model, which never saw the concept, under the fine-tunes' recipe (same concept, held-out adversary images and
    /// memorisation set), so every extraction figure has a floor measured exactly as it was.
    /// </param>
    public static RunEvaluation Evaluate(EvaluationContext context, RunDirectory run, EvaluationSettings settings, string outputDirectory,
                                         Action<string>? log = null, IProgress<AttackProgress>? progress = null, CancellationToken cancel = default,
                                         Action<AttackEvaluation>? attackDone = null, RunConfig? recipe = null)
    {
        log ??= _ => { };
        var config = recipe ?? run.LoadConfig();
        var concept = config.DataOrDefault.Concept
            ?? throw new InvalidDataException($"{(recipe is null ? run.ConfigPath : "the evaluation recipe")} has no data.concept: nothing to evaluate extraction of.");
        Directory.CreateDirectory(outputDirectory);
        var classifier = context.Classifier;
        var detector = context.Detector;
        // Real and training images are compared with the run's as its model draws them: at its sample size and channels.
        var model = UNetConfig.FromDiffusersJson(File.ReadAllText(run.UNetConfigPath));
        int size = model.SampleSize, channels = model.InChannels;
        var reference = context.ReferenceAt(size, channels);
        var resnet = context.ResNet;
        detector.EnsureUnseenBy(config, settings.Attacks.Any(AttackKinds.UsesInversion) ? settings.Attack.InversionOrDefault.Images : 0,
            recipe is null ? run.ConfigPath : "the evaluation recipe");

        log("Loading the run's training images…");
        var training = TrainingData.ApplyArm(ConceptDatasetBuilder.Build(config.DataOrDefault.ToRecipe()), config).Train
            .Select(e => e.Image.FitTo(size, channels)).ToList();
        if (settings.MemorisationTrainImages > 0) training = training.Take(settings.MemorisationTrainImages).ToList();
        var trainingFeatures = classifier.Extract(training);
        var pixels = new PixelFeatures(size, size, channels);
        var trainingPixels = pixels.Extract(training);
        int resnetImages = Math.Min(settings.ResNetImages, reference.ResNetFeatures?.Count ?? 0);

        var results = new List<AttackEvaluation>();
        foreach (var kind in settings.Attacks)
        {
            cancel.ThrowIfCancellationRequested();
            log($"Attack: {kind.ToName()}…");
            var attackDir = Path.Combine(outputDirectory, "attacks", kind.ToName());
            var attack = AttackRunner.Run(run, settings.Attack with { Kind = kind }, attackDir, concept.Phrase, progress: progress, cancel: cancel, recipe: recipe);

            var clock = Stopwatch.StartNew();
            var images = attack.Images.Select(i => i.Image).ToList();
            var generatedFeatures = classifier.Extract(images);
            var labelled = attack.Images.Where(i => i.ClassLabel is not null).ToList();
            var report = new MetricsReport($"{config.Name}/{kind.ToName()}", images.Count)
            {
                Extraction = ConceptExtraction.Measure(detector, images),
                Fidelity = labelled.Count > 0
                    ? SemanticFidelity.Measure(classifier, labelled.Select(i => i.Image).ToList(), labelled.Select(i => i.ClassLabel!.Value).ToList())
                    : null,
                Distribution = DistributionMetrics.FromFeatures(classifier.Id, reference.Features, generatedFeatures, new KidOptions(SubsetSize: Math.Min(1000, Math.Min(reference.Images.Count, images.Count)))),
                ResNetDistribution = resnet is null ? null
                    : DistributionMetrics.FromFeatures(resnet.Id, reference.ResNetFeatures!.Take(resnetImages).ToList(), resnet.Extract(images.Take(resnetImages).ToList()), null),
                PixelMemorisation = Memorisation.Analyse("pixels", pixels.Extract(images), trainingPixels, MemorisationOptions.ForPixels(size * size * channels)),
                FeatureMemorisation = Memorisation.Analyse(classifier.Id, generatedFeatures, trainingFeatures, MemorisationOptions.ForFeatures()),
                Settings = new Dictionary<string, string>
                {
                    ["attack"] = kind.ToName(),
                    ["images_per_prompt"] = settings.Attack.ImagesPerPrompt.ToString(),
                    ["guidance"] = settings.Attack.GuidanceScale.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    ["sampler"] = settings.Attack.Sampler.ToName(),
                    ["sampling_steps"] = settings.Attack.SamplingSteps.ToString(),
                    ["reference_images"] = reference.Images.Count.ToString(),
                    ["memorisation_train_images"] = training.Count.ToString(),
                    ["resnet_images"] = resnetImages.ToString(),
                },
            };
            var evaluation = new AttackEvaluation(kind, report, attackDir, attack.Timing, clock.Elapsed, attack.Inversion);
            results.Add(evaluation);
            AtomicFile.WriteAllText(Path.Combine(attackDir, "metrics.json"), report.ToJson());
            attackDone?.Invoke(evaluation);
        }

        var runEvaluation = new RunEvaluation(run.Root, recipe is null ? config.SelectiveOrDefault.Arm.ToName() : "never saw the concept", concept.Phrase, results, classifier.Id, detector.Id, detector.Threshold);
        AtomicFile.WriteAllText(Path.Combine(outputDirectory, "eval.json"), runEvaluation.ToJson());
        AtomicFile.WriteAllText(Path.Combine(outputDirectory, "eval.md"), runEvaluation.ToMarkdown());
        return runEvaluation;
    }
}
