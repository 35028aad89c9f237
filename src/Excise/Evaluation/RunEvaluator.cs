using System.Diagnostics;
using System.Text.Json;
using Excise.Attacks;
using Excise.Data;
using Excise.Evaluation.Features;
using Excise.Evaluation.Judges;
using Excise.Evaluation.Metrics;
using Excise.Serialization;
using Excise.Training;

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

public sealed record AttackEvaluation(AttackKind Kind, MetricsReport Metrics, string OutputDirectory, AttackTiming Timing, TimeSpan JudgeTime);

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
            kind = AttackKinds.Name(a.Kind),
            output = a.OutputDirectory,
            attack_seconds = a.Timing.Total.TotalSeconds,
            judge_seconds = a.JudgeTime.TotalSeconds,
            metrics = JsonDocument.Parse(a.Metrics.ToJson()).RootElement,
        }),
    }, new JsonSerializerOptions { WriteIndented = true });
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
        log ??= _ => { };
        var config = run.LoadConfig();
        var concept = config.DataOrDefault.Concept ?? throw new InvalidDataException($"{run.ConfigPath} has no data.concept: nothing to evaluate extraction of.");
        Directory.CreateDirectory(outputDirectory);

        log("Loading (or training) the judges…");
        using var classifier = GarmentClassifier.LoadOrTrain(settings.JudgeCache, settings.QuickJudges ? GarmentClassifierSettings.Quick : GarmentClassifierSettings.Default);
        using var detector = ConceptDetector.LoadOrTrain(settings.JudgeCache, TrainingData.InjectionFor(concept),
            settings.QuickJudges ? ConceptDetectorSettings.Quick : ConceptDetectorSettings.Default);

        log("Loading reference and training images…");
        var reference = FashionMnist.Load(DatasetSplit.Test, settings.ReferenceImages).Select(i => TrainingData.Fit(i.Image, 32, 1)).ToList();
        var training = TrainingData.ApplyArm(ConceptDatasetBuilder.Build(TrainingData.RecipeFor(config)), config).Train
            .Select(e => TrainingData.Fit(e.Image, 32, 1)).ToList();
        if (settings.MemorisationTrainImages > 0) training = training.Take(settings.MemorisationTrainImages).ToList();
        var referenceFeatures = classifier.Extract(reference);
        var trainingFeatures = classifier.Extract(training);
        var pixels = new PixelFeatures(32, 32, 1);
        var trainingPixels = pixels.Extract(training);
        using var resnet = settings.ResNetImages > 0 ? new ResNet18Features() : null;
        var resnetReference = resnet?.Extract(reference.Take(settings.ResNetImages).ToList());

        var results = new List<AttackEvaluation>();
        foreach (var kind in settings.Attacks)
        {
            cancel.ThrowIfCancellationRequested();
            log($"Attack: {AttackKinds.Name(kind)}…");
            var attackDir = Path.Combine(outputDirectory, "attacks", AttackKinds.Name(kind));
            var attack = AttackRunner.Run(run, settings.Attack with { Kind = kind }, attackDir, concept.Phrase, progress: progress, cancel: cancel);

            var clock = Stopwatch.StartNew();
            var images = attack.Images.Select(i => i.Image).ToList();
            var generatedFeatures = classifier.Extract(images);
            var labelled = attack.Images.Where(i => i.ClassLabel is not null).ToList();
            var report = new MetricsReport($"{config.Name}/{AttackKinds.Name(kind)}", images.Count)
            {
                Extraction = ConceptExtraction.Measure(detector, images),
                Fidelity = labelled.Count > 0
                    ? SemanticFidelity.Measure(classifier, labelled.Select(i => i.Image).ToList(), labelled.Select(i => i.ClassLabel!.Value).ToList())
                    : null,
                Distribution = DistributionMetrics.FromFeatures(classifier.Id, referenceFeatures, generatedFeatures, new KidOptions(SubsetSize: Math.Min(1000, Math.Min(reference.Count, images.Count)))),
                ResNetDistribution = resnet is null ? null
                    : DistributionMetrics.FromFeatures(resnet.Id, resnetReference!, resnet.Extract(images.Take(settings.ResNetImages).ToList()), null),
                PixelMemorisation = Memorisation.Analyse("pixels", pixels.Extract(images), trainingPixels, MemorisationOptions.ForPixels(32 * 32)),
                FeatureMemorisation = Memorisation.Analyse(classifier.Id, generatedFeatures, trainingFeatures, MemorisationOptions.ForFeatures()),
                Settings = new Dictionary<string, string>
                {
                    ["attack"] = AttackKinds.Name(kind),
                    ["images_per_prompt"] = settings.Attack.ImagesPerPrompt.ToString(),
                    ["guidance"] = settings.Attack.GuidanceScale.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    ["ddim_steps"] = settings.Attack.SamplingSteps.ToString(),
                    ["reference_images"] = reference.Count.ToString(),
                    ["memorisation_train_images"] = training.Count.ToString(),
                    ["resnet_images"] = settings.ResNetImages.ToString(),
                },
            };
            results.Add(new AttackEvaluation(kind, report, attackDir, attack.Timing, clock.Elapsed));
            AtomicFile.WriteAllText(Path.Combine(attackDir, "metrics.json"), report.ToJson());
        }

        var evaluation = new RunEvaluation(run.Root, Excise.Configuration.ConfigLoader.ToJson(config.SelectiveOrDefault.Arm).Trim('"'), concept.Phrase, results, classifier.Id, detector.Id, detector.Threshold);
        AtomicFile.WriteAllText(Path.Combine(outputDirectory, "eval.json"), evaluation.ToJson());
        AtomicFile.WriteAllText(Path.Combine(outputDirectory, "eval.md"), evaluation.ToMarkdown());
        return evaluation;
    }
}
