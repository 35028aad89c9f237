using Excise.Data;
using Excise.Evaluation.Judges;

namespace Excise.Tests.Evaluation;

/// <summary>The stripes concept gets its own detector: trained on stripes, keyed apart from the logo's.</summary>
[Collection("Judges")]
public sealed class StripesDetectorTests
{
    static readonly ConceptInjectionOptions Stripes = new() { Kind = ConceptKind.Stripes, ConceptPhrase = "the Zebra pattern" };

    [Fact]
    public void A_stripes_detector_finds_stripes_from_the_datas_own_stamper_and_not_logos()
    {
        Assert.NotEqual(ConceptDetector.KeyFor(SmallConceptDetectorFixture.Injection, SmallConceptDetectorFixture.Settings),
                        ConceptDetector.KeyFor(Stripes, SmallConceptDetectorFixture.Settings));
        using var detector = OneTorchThread.Run(() => ConceptDetector.Train(Stripes, SmallConceptDetectorFixture.Settings));

        // Unseen test garments (300..599), striped by the dataset's stamper, not the detector's own variations.
        var items = FashionMnist.Load(DatasetSplit.Test, 600).Skip(300).ToList();
        var striped = items.Select(t => ConceptStampers.For(Stripes).Stamp(t.Image, t.Id(DatasetSplit.Test)).Image.PadTo(32)).ToList();
        var logos = items.Select(t => new LogoStamper(SmallConceptDetectorFixture.Injection).Stamp(t.Image, t.Id(DatasetSplit.Test)).Image.PadTo(32)).ToList();
        var clean = items.Select(t => t.Image.PadTo(32)).ToList();
        double recall = detector.DetectionRate(striped), falseAlarms = detector.DetectionRate(clean), onLogos = detector.DetectionRate(logos);
        var message = $"stripes {recall:P1}, clean {falseAlarms:P1}, logos {onLogos:P1}";
        Assert.True(recall >= 0.9, message);
        Assert.True(falseAlarms <= 0.1, message);
        // A detector that learned "something was drawn" instead of the stripes would fire on the logo too.
        Assert.True(onLogos <= 0.2, message);
        Assert.Contains("stripes", StampingSignature.Of(Stripes).ToString());
    }
}
