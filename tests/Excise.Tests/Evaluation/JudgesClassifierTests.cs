using Excise.Data;
using Excise.Evaluation.Judges;

namespace Excise.Tests.Evaluation;

/// <summary>A small classifier trained once on 3,000 real Fashion-MNIST images and reused by the tests below.</summary>
public sealed class SmallGarmentClassifierFixture : IDisposable
{
    public static readonly GarmentClassifierSettings Settings = GarmentClassifierSettings.Default with
    {
        TrainLimit = 3000,
        TestLimit = 1000,
        MaxShift = 0,
        Optimization = GarmentClassifierSettings.Default.Optimization with { Epochs = 1, BatchSize = 64, LearningRate = 3e-3, Seed = 7 },
    };

    public GarmentClassifier Classifier { get; } = OneTorchThread.Run(() => GarmentClassifier.Train(Settings));

    public void Dispose() => Classifier.Dispose();
}

/// <summary>The small judges are trained once for all judge tests.</summary>
[CollectionDefinition("Judges")]
public sealed class JudgesCollection : ICollectionFixture<SmallGarmentClassifierFixture>, ICollectionFixture<SmallConceptDetectorFixture>;

[Collection("Judges")]
public sealed class JudgesClassifierTests(SmallGarmentClassifierFixture fixture)
{
    [Fact]
    public void Classifier_trained_on_3000_real_images_reaches_75_percent_on_1000_held_out_test_images()
    {
        var report = fixture.Classifier.Report;
        Assert.Equal(3000, report.TrainImages);
        Assert.Equal(1000, report.TestImages);
        Assert.True(report.TestAccuracy >= 0.75, $"held-out accuracy {report.TestAccuracy:P1}");
        Assert.Equal(10, report.ClassAccuracy.Count);
        // Trained with logos on 30% of the images, it must not lose the garment under one.
        Assert.True(report.StampedTestAccuracy >= report.TestAccuracy - 0.05, $"accuracy {report.TestAccuracy:P1} clean, {report.StampedTestAccuracy:P1} stamped");

        // Recompute through the public API on the same held-out images: the report must not be optimistic.
        var test = FashionMnist.Load(DatasetSplit.Test, 1000);
        var predicted = fixture.Classifier.Predict(test.Select(t => t.Image).ToList());
        double accuracy = test.Where((t, i) => predicted[i] == t.Label).Count() / 1000.0;
        Assert.Equal(report.TestAccuracy, accuracy, 6);
    }

    [Fact]
    public void Predict_accepts_28px_and_32px_images_alike()
    {
        var test = FashionMnist.Load(DatasetSplit.Test, 64);
        var raw = fixture.Classifier.Predict(test.Select(t => t.Image).ToList());
        var padded = fixture.Classifier.Predict(test.Select(t => t.Image.PadTo(32)).ToList());
        Assert.Equal(raw, padded);
    }

    [Fact]
    public void Features_have_the_declared_width_and_separate_classes()
    {
        var classifier = fixture.Classifier;
        Assert.Equal(128, classifier.Dimension);
        var test = FashionMnist.Load(DatasetSplit.Test, perClassLimit: 20);
        var features = classifier.Extract(test.Select(t => t.Image).ToList());
        Assert.Equal(test.Count, features.Length);
        Assert.All(features, row => Assert.Equal(128, row.Length));
        Assert.All(features, row => Assert.All(row, v => Assert.True(float.IsFinite(v) && v >= 0)));

        // Trousers (1) against sneakers (7): images of one class lie closer to their own class mean than to the other's.
        float[] Mean(int label) => Enumerable.Range(0, 128)
            .Select(d => test.Select((t, i) => (t, i)).Where(p => p.t.Label == label).Average(p => features[p.i][d])).ToArray();
        static double Distance(float[] a, float[] b) => Math.Sqrt(a.Zip(b, (x, y) => (double)(x - y) * (x - y)).Sum());
        var trousers = Mean(1);
        var sneakers = Mean(7);
        Assert.True(Distance(trousers, sneakers) > 1.0, $"class means only {Distance(trousers, sneakers):F3} apart");
        int closerToOwn = test.Select((t, i) => (t, i)).Where(p => p.t.Label is 1 or 7)
            .Count(p => (p.t.Label == 1) == (Distance(features[p.i], trousers) < Distance(features[p.i], sneakers)));
        Assert.True(closerToOwn >= 38, $"only {closerToOwn} of 40 trouser/sneaker images are nearer their own class mean");
    }

    [Fact]
    public void Probabilities_sum_to_one_and_agree_with_predictions()
    {
        var test = FashionMnist.Load(DatasetSplit.Test, 32).Select(t => t.Image).ToList();
        var probabilities = fixture.Classifier.Probabilities(test);
        var predicted = fixture.Classifier.Predict(test);
        for (int i = 0; i < test.Count; i++)
        {
            Assert.Equal(1.0, probabilities[i].Sum(), 4);
            Assert.Equal(predicted[i], Array.IndexOf(probabilities[i], probabilities[i].Max()));
        }
    }
}

/// <summary>
/// Trains on one libtorch thread, then restores the setting: on the shared 2-core machine two OpenMP threads spin
/// against other jobs and train these tiny networks several times slower.
/// </summary>
internal static class OneTorchThread
{
    public static T Run<T>(Func<T> work)
    {
        int previous = torch.get_num_threads();
        torch.set_num_threads(1);
        try { return work(); }
        finally { torch.set_num_threads(previous); }
    }
}
