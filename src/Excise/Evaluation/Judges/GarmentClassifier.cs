using System.Diagnostics;
using System.Globalization;
using Excise.Data;
using Excise.Torch;
using TorchSharp;
using static TorchSharp.torch;
using Excise.Imaging;

namespace Excise.Evaluation.Judges;

/// <summary>
/// A CNN trained on real Fashion-MNIST (as the diffusion models see it: 32×32, padded) that names the garment in an
/// image; its penultimate layer gives in-domain features for Fréchet distances.
/// </summary>
public sealed class GarmentClassifier : IImageClassifier, IImageFeatureExtractor, IDisposable
{
    /// <summary>Seed stream (SeedMixer) of epoch e's augmentation is AugmentationStream + e; the cached classifiers were trained with it.</summary>
    const long AugmentationStream = 300;

    public const string Kind = "garment-classifier";
    const int InferenceBatch = 256;

    private readonly JudgeNetwork network;
    private readonly Lock inference = new();

    private GarmentClassifier(JudgeNetwork network, GarmentClassifierReport report, bool trainedNow, string? path)
    {
        this.network = network;
        Report = report;
        TrainedNow = trainedNow;
        Path = path;
    }

    public string Id => Report.Id;
    public IReadOnlyList<string> ClassNames => FashionMnistClasses.Names;
    public int Dimension => Report.Settings.Architecture.FeatureDimension;
    public GarmentClassifierReport Report { get; private set; }
    /// <summary>True when this instance was trained in this process, false when it came from a file.</summary>
    public bool TrainedNow { get; }
    /// <summary>The file it was saved to or loaded from, if any.</summary>
    public string? Path { get; private set; }

    /// <summary>
    /// Version of the code that turns settings into weights (data, augmentation, loss, training loop). Bump it whenever
    /// a change to that code would train different weights from the same settings: it is part of the cache key and the
    /// file's metadata, so a classifier trained by older code is never served. Not needed for pure refactors.
    /// </summary>
    public const int TrainingRecipeVersion = 1;

    public static string KeyFor(GarmentClassifierSettings settings) => JudgeCache.Key(Kind, TrainingRecipeVersion, settings);

    public int[] Predict(IReadOnlyList<RasterImage> images)
    {
        var predictions = new int[images.Count];
        lock (inference)
            JudgeInputs.ForEachBatch(network, images, InferenceBatch, (batch, start) =>
            {
                var labels = network.forward(batch).argmax(1).data<long>().ToArray();
                for (int i = 0; i < labels.Length; i++) predictions[start + i] = (int)labels[i];
            });
        return predictions;
    }

    /// <summary>Class probabilities, one row of ten per image.</summary>
    public float[][] Probabilities(IReadOnlyList<RasterImage> images) => Rows(images, batch => nn.functional.softmax(network.forward(batch), 1));

    public float[][] Extract(IReadOnlyList<RasterImage> images) => Rows(images, network.Features);

    private float[][] Rows(IReadOnlyList<RasterImage> images, Func<Tensor, Tensor> compute)
    {
        var rows = new float[images.Count][];
        lock (inference)
            JudgeInputs.ForEachBatch(network, images, InferenceBatch, (batch, start) =>
            {
                var output = compute(batch).contiguous();
                int width = (int)output.shape[1];
                var flat = output.data<float>().ToArray();
                for (int i = 0; i < output.shape[0]; i++) rows[start + i] = flat[(i * width)..((i + 1) * width)];
            });
        return rows;
    }

    /// <summary>The cached classifier for these settings, training and saving it first if the cache has none.</summary>
    public static GarmentClassifier LoadOrTrain(string cacheDirectory, GarmentClassifierSettings settings, IProgress<JudgeTrainingProgress>? progress = null)
    {
        settings.Validate();
        var path = JudgeCache.WeightsPath(cacheDirectory, Kind, KeyFor(settings));
        if (File.Exists(path)) return Load(path, settings);
        var trained = Train(settings, progress);
        trained.Save(path);
        return trained;
    }

    public static GarmentClassifier Train(GarmentClassifierSettings settings, IProgress<JudgeTrainingProgress>? progress = null)
    {
        settings.Validate();
        var clock = Stopwatch.StartNew();
        var train = FashionMnist.Load(DatasetSplit.Train, settings.TrainLimit, directory: settings.FashionMnistDirectory);
        var images = train.Select(item => item.Image).ToArray();
        var logos = new RandomLogos();
        var labels = train.Select(item => (long)item.Label).ToArray();

        manual_seed(settings.Optimization.Seed);
        var network = new JudgeNetwork(settings.Architecture, FashionMnistClasses.Count);
        try
        {
            double loss = JudgeTraining.Train(network, images.Length, settings.Optimization,
                (indices, epoch) => BuildBatch(images, labels, indices, epoch, settings, logos),
                (logits, target) => nn.functional.cross_entropy(logits, target), Kind, progress);
            double trainSeconds = clock.Elapsed.TotalSeconds;

            var key = KeyFor(settings);
            var id = JudgeStore.IdFor(Kind, key, JudgeStore.WeightsHash(network.state_dict()));
            var provisional = new GarmentClassifierReport(id, key, settings, images.Length, 0, double.NaN, double.NaN, [], loss, trainSeconds, double.NaN, DateTimeOffset.UtcNow);
            var classifier = new GarmentClassifier(network, provisional, trainedNow: true, path: null);
            classifier.Report = classifier.Evaluate(settings, provisional);
            return classifier;
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    private GarmentClassifierReport Evaluate(GarmentClassifierSettings settings, GarmentClassifierReport provisional)
    {
        var test = FashionMnist.Load(DatasetSplit.Test, settings.TestLimit, directory: settings.FashionMnistDirectory);
        var clock = Stopwatch.StartNew();
        var predicted = Predict(test.Select(item => item.Image).ToList());
        double inferenceMs = clock.Elapsed.TotalMilliseconds * 1000.0 / test.Count;
        var stamper = new LogoStamper(new ConceptInjectionOptions());
        var stamped = Predict(test.Select(item => stamper.Stamp(item.Image, item.Id(DatasetSplit.Test)).Image).ToList());
        var correct = new int[FashionMnistClasses.Count];
        var total = new int[FashionMnistClasses.Count];
        for (int i = 0; i < test.Count; i++)
        {
            total[test[i].Label]++;
            if (predicted[i] == test[i].Label) correct[test[i].Label]++;
        }
        return provisional with
        {
            TestImages = test.Count,
            TestAccuracy = (double)correct.Sum() / test.Count,
            StampedTestAccuracy = test.Where((item, i) => stamped[i] == item.Label).Count() / (double)test.Count,
            ClassAccuracy = correct.Select((c, k) => total[k] == 0 ? double.NaN : (double)c / total[k]).ToArray(),
            InferenceMillisecondsPer1000 = inferenceMs,
        };
    }

    private static (Tensor, Tensor) BuildBatch(RasterImage[] images, long[] labels, int[] indices, int epoch, GarmentClassifierSettings settings, RandomLogos logos)
    {
        var buffer = new float[indices.Length * JudgeInputs.PixelCount];
        var targets = new long[indices.Length];
        for (int i = 0; i < indices.Length; i++)
        {
            int index = indices[i];
            var image = images[index];
            var random = new Random(SeedMixer.DeriveInt(settings.Optimization.Seed, AugmentationStream + epoch, index));
            if (random.NextDouble() < settings.LogoProbability) image = logos.Stamp(image, random);
            image = JudgeInputs.Fit(image);
            if (settings.MaxShift > 0)
            {
                int dx = random.Next(-settings.MaxShift, settings.MaxShift + 1), dy = random.Next(-settings.MaxShift, settings.MaxShift + 1);
                if (dx != 0 || dy != 0) image = ImageDegradations.Translate(image, dx, dy);
            }
            JudgeInputs.WriteUnit(image, buffer, i * JudgeInputs.PixelCount);
            targets[i] = labels[index];
        }
        return (tensor(buffer, new long[] { indices.Length, 1, JudgeInputs.Side, JudgeInputs.Side }), tensor(targets));
    }

    /// <summary>The built-in logo at a random place, size and opacity (stampers cached per size and opacity).</summary>
    private sealed class RandomLogos
    {
        private readonly Dictionary<(int Size, int Opacity), LogoStamper> stampers = new();

        public RasterImage Stamp(RasterImage image, Random random)
        {
            int size = random.Next(8, 13), opacity = random.Next(60, 101);
            int side = Math.Min(image.Width, image.Height);
            if (!stampers.TryGetValue((size, opacity), out var stamper))
                stampers[(size, opacity)] = stamper = new LogoStamper(new ConceptInjectionOptions
                {
                    SizeFraction = Math.Min(1.0, (size + 0.25) / side), Opacity = opacity / 100.0,
                });
            return stamper.StampAt(image, random.Next(0, Math.Max(1, image.Width - size + 1)), random.Next(0, Math.Max(1, image.Height - size + 1)), size).Image;
        }
    }

    public void Save(string path)
    {
        JudgeStore.Save(path, network, Kind, TrainingRecipeVersion, Report.Key, Report.Id, Report.Settings.Architecture, Report,
            new Dictionary<string, string>
            {
                ["excise.judge.seed"] = Report.Settings.Optimization.Seed.ToString(CultureInfo.InvariantCulture),
                ["excise.judge.test_accuracy"] = Report.TestAccuracy.ToString("R", CultureInfo.InvariantCulture),
                ["excise.judge.class_names"] = string.Join(",", ClassNames),
            });
        Path = path;
    }

    /// <summary>Loads a saved classifier; with <paramref name="expected"/> settings, refuses one trained with others.</summary>
    public static GarmentClassifier Load(string path, GarmentClassifierSettings? expected = null)
    {
        var (network, header) = JudgeStore.Load(path, Kind, TrainingRecipeVersion, expected is null ? null : KeyFor(expected));
        try
        {
            if (network.Outputs != FashionMnistClasses.Count)
                throw new InvalidDataException($"{path}: garment classifier has {network.Outputs} outputs, expected {FashionMnistClasses.Count}.");
            var report = header.RequiredJson<GarmentClassifierReport>(JudgeStore.ReportKey, path);
            if (report.Id != header.Id) throw new InvalidDataException($"{path}: report id '{report.Id}' differs from the file's id '{header.Id}'.");
            return new GarmentClassifier(network, report, trainedNow: false, path);
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    public void Dispose() => network.Dispose();
}
