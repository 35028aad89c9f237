using Excise.Data;
using Excise.Evaluation.Judges;
using Excise.Serialization;
using Excise.Imaging;

namespace Excise.Tests.Evaluation;

[Collection("Judges")]
public sealed class JudgesStoreTests(SmallGarmentClassifierFixture classifiers, SmallConceptDetectorFixture detectors)
{
    static List<RasterImage> Probe(int count) => FashionMnist.Load(DatasetSplit.Test, count).Select(t => t.Image).ToList();

    [Fact]
    public void Classifier_save_then_load_gives_identical_predictions_features_and_report()
    {
        using var dir = new TempDir();
        var original = classifiers.Classifier;
        original.Save(dir.File("classifier.safetensors"));
        using var loaded = GarmentClassifier.Load(dir.File("classifier.safetensors"), SmallGarmentClassifierFixture.Settings);

        Assert.False(loaded.TrainedNow);
        Assert.Equal(original.Id, loaded.Id);
        Assert.Equal(original.Report.TestAccuracy, loaded.Report.TestAccuracy);
        Assert.Equal(SmallGarmentClassifierFixture.Settings.Optimization, loaded.Report.Settings.Optimization);
        var images = Probe(200);
        Assert.Equal(original.Predict(images), loaded.Predict(images));
        var a = original.Extract(images);
        var b = loaded.Extract(images);
        for (int i = 0; i < images.Count; i++) Assert.Equal(a[i], b[i]);

        var metadata = SafetensorsFile.ReadMetadata(dir.File("classifier.safetensors"));
        Assert.Equal(GarmentClassifier.Kind, metadata["excise.judge.kind"]);
        Assert.Equal("7", metadata["excise.judge.seed"]);
        Assert.Equal(original.Id, metadata["excise.judge.id"]);
        var reportJson = File.ReadAllText(dir.File("classifier.json"));
        Assert.Contains("\"test_accuracy\"", reportJson);
        Assert.Contains(original.Id, reportJson);
    }

    [Fact]
    public void Detector_save_then_load_gives_identical_scores_and_threshold()
    {
        using var dir = new TempDir();
        var original = detectors.Detector;
        original.Save(dir.File("detector.safetensors"));
        using var loaded = ConceptDetector.Load(dir.File("detector.safetensors"), SmallConceptDetectorFixture.Injection, SmallConceptDetectorFixture.Settings);

        Assert.Equal(original.Id, loaded.Id);
        Assert.Equal(original.Threshold, loaded.Threshold);
        var stamper = new LogoStamper(SmallConceptDetectorFixture.Injection);
        var images = Probe(100).SelectMany((image, i) => new[] { image, stamper.Stamp(image, $"p{i}").Image }).ToList();
        Assert.Equal(original.Scores(images), loaded.Scores(images));
        Assert.Equal(original.Report.Condition("blur").Metrics, loaded.Report.Condition("blur").Metrics);
        Assert.Equal(original.Threshold.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
            SafetensorsFile.ReadMetadata(dir.File("detector.safetensors"))["excise.judge.threshold"]);
    }

    [Fact]
    public void Cache_trains_once_and_then_returns_the_saved_judge_untouched()
    {
        using var dir = new TempDir();
        var tiny = SmallGarmentClassifierFixture.Settings with { TrainLimit = 400, TestLimit = 100 };
        var path = JudgeCache.WeightsPath(dir.Path, GarmentClassifier.Kind, GarmentClassifier.KeyFor(tiny));

        string firstId;
        using (var first = OneTorchThread.Run(() => GarmentClassifier.LoadOrTrain(dir.Path, tiny)))
        {
            Assert.True(first.TrainedNow);
            Assert.Equal(path, first.Path);
            firstId = first.Id;
        }
        Assert.True(File.Exists(path));
        Assert.True(File.Exists(Path.ChangeExtension(path, ".json")));
        var written = File.GetLastWriteTimeUtc(path);

        using var second = GarmentClassifier.LoadOrTrain(dir.Path, tiny);
        Assert.False(second.TrainedNow);
        Assert.Equal(firstId, second.Id);
        Assert.Equal(written, File.GetLastWriteTimeUtc(path));
        Assert.Single(Directory.GetFiles(dir.Path, "*.safetensors"));

        // Other settings get another key, hence another file.
        Assert.NotEqual(GarmentClassifier.KeyFor(tiny), GarmentClassifier.KeyFor(tiny with { TrainLimit = 401 }));
    }

    [Fact]
    public void Detector_cache_is_keyed_by_the_stamp_and_returns_the_saved_detector()
    {
        using var dir = new TempDir();
        var injection = SmallConceptDetectorFixture.Injection;
        var settings = SmallConceptDetectorFixture.Settings;
        var key = ConceptDetector.KeyFor(injection, settings);
        detectors.Detector.Save(JudgeCache.WeightsPath(dir.Path, ConceptDetector.Kind, key));

        using var cached = ConceptDetector.LoadOrTrain(dir.Path, injection, settings);
        Assert.False(cached.TrainedNow);
        Assert.Equal(detectors.Detector.Id, cached.Id);

        // What the stamp looks like changes the key; how often images are stamped or captioned does not.
        Assert.NotEqual(key, ConceptDetector.KeyFor(injection with { SizeFraction = 0.3 }, settings));
        Assert.NotEqual(key, ConceptDetector.KeyFor(injection with { Placement = LogoPlacement.TopLeft }, settings));
        Assert.NotEqual(key, ConceptDetector.KeyFor(injection, settings with { TrainLimit = 3001 }));
        Assert.Equal(key, ConceptDetector.KeyFor(injection with { StampFraction = 0.1, MentionFraction = 0.5 }, settings));
    }

    [Fact]
    public void A_judge_trained_by_another_training_recipe_is_not_served()
    {
        using var dir = new TempDir();
        var injection = SmallConceptDetectorFixture.Injection;
        var settings = SmallConceptDetectorFixture.Settings;
        var key = ConceptDetector.KeyFor(injection, settings);
        // The recipe is part of the key: older code's detector for the same settings is another file, never looked up.
        Assert.NotEqual(key, JudgeCache.Key(ConceptDetector.Kind, ConceptDetector.TrainingRecipeVersion - 1, StampingSignature.Of(injection), settings));
        Assert.NotEqual(GarmentClassifier.KeyFor(SmallGarmentClassifierFixture.Settings),
            JudgeCache.Key(GarmentClassifier.Kind, GarmentClassifier.TrainingRecipeVersion + 1, SmallGarmentClassifierFixture.Settings));

        // A file under the current key that records another recipe (renamed, or from before recipes were recorded) is refused.
        var path = JudgeCache.WeightsPath(dir.Path, ConceptDetector.Kind, key);
        detectors.Detector.Save(path);
        Assert.Equal($"{ConceptDetector.TrainingRecipeVersion}", SafetensorsFile.ReadMetadata(path)["excise.judge.training_recipe"]);
        RewriteMetadata(path, metadata => metadata["excise.judge.training_recipe"] = $"{ConceptDetector.TrainingRecipeVersion - 1}");
        var older = Assert.Throws<InvalidDataException>(() => ConceptDetector.LoadOrTrain(dir.Path, injection, settings));
        Assert.Contains(path, older.Message);
        Assert.Contains($"trained by training recipe {ConceptDetector.TrainingRecipeVersion - 1}; this build trains recipe {ConceptDetector.TrainingRecipeVersion}", older.Message);
        RewriteMetadata(path, metadata => metadata.Remove("excise.judge.training_recipe"));
        var unrecorded = Assert.Throws<InvalidDataException>(() => ConceptDetector.Load(path));
        Assert.Contains("before recipes were recorded", unrecorded.Message);
    }

    static void RewriteMetadata(string path, Action<Dictionary<string, string>> change)
    {
        Dictionary<string, string> metadata;
        List<KeyValuePair<string, torch.Tensor>> tensors;
        using (var contents = SafetensorsFile.Load(path))
        {
            metadata = new Dictionary<string, string>(contents.Metadata);
            tensors = contents.Tensors.Select(kv => new KeyValuePair<string, torch.Tensor>(kv.Key, kv.Value.clone())).ToList();
        }
        change(metadata);
        SafetensorsFile.Save(path, tensors, metadata);
        foreach (var (_, tensor) in tensors) tensor.Dispose();
    }

    [Fact]
    public void Truncated_judge_file_is_refused_naming_the_file()
    {
        using var dir = new TempDir();
        var path = dir.File("classifier.safetensors");
        classifiers.Classifier.Save(path);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var error = Assert.Throws<InvalidDataException>(() => GarmentClassifier.Load(path));
        Assert.Contains(path, error.Message);
        Assert.Contains("not a valid safetensors file", error.Message);
    }

    [Fact]
    public void Altered_weights_are_refused_by_their_recorded_hash()
    {
        using var dir = new TempDir();
        var path = dir.File("detector.safetensors");
        detectors.Detector.Save(path);
        var bytes = File.ReadAllBytes(path);
        bytes[^3] ^= 0x40; // one bit of the last weight: still a well-formed safetensors file
        File.WriteAllBytes(path, bytes);
        var error = Assert.Throws<InvalidDataException>(() => ConceptDetector.Load(path));
        Assert.Contains(path, error.Message);
        Assert.Contains("SHA-256", error.Message);
    }

    [Fact]
    public void Wrong_kind_other_settings_and_foreign_files_are_refused()
    {
        using var dir = new TempDir();
        var classifierPath = dir.File("classifier.safetensors");
        classifiers.Classifier.Save(classifierPath);
        var wrongKind = Assert.Throws<InvalidDataException>(() => ConceptDetector.Load(classifierPath));
        Assert.Contains("holds a garment-classifier judge, expected a concept-detector", wrongKind.Message);

        var otherSettings = Assert.Throws<InvalidDataException>(() =>
            GarmentClassifier.Load(classifierPath, SmallGarmentClassifierFixture.Settings with { TrainLimit = 999 }));
        Assert.Contains("was trained for settings", otherSettings.Message);

        var foreign = dir.File("foreign.safetensors");
        SafetensorsFile.Save(foreign, [new("w", torch.zeros(3))]);
        var notJudge = Assert.Throws<InvalidDataException>(() => GarmentClassifier.Load(foreign));
        Assert.Contains("not an Excise judge file", notJudge.Message);

        Assert.Throws<FileNotFoundException>(() => GarmentClassifier.Load(dir.File("missing.safetensors")));
    }
}
