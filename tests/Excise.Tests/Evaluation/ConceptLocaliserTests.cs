using Excise.Data;
using Excise.Evaluation.Judges;
using Excise.Imaging;

namespace Excise.Tests.Evaluation;

/// <summary>Masks from the detector alone, judged against where the stamper really drew.</summary>
[Collection("Judges")]
public sealed class ConceptLocaliserTests(SmallConceptDetectorFixture fixture)
{
    /// <summary>Real test-split garments, half stamped with the fixture's logo (bottom-right), with the stamper's masks.</summary>
    static IReadOnlyList<TrainingExample> Garments() => ConceptDatasetBuilder.Build(new ConceptDatasetRecipe
    {
        Split = DatasetSplit.Test, Limit = 120,
        Injection = SmallConceptDetectorFixture.Injection with { ConceptPhrase = "the Acme logo", StampFraction = 0.5, MentionFraction = 1, Seed = 5 },
    }).Train;

    [Fact]
    public void Occlusion_masks_find_the_logo_where_the_stamper_put_it()
    {
        var examples = Garments();
        var truth = examples.Select(e => e.ConceptMask).ToList();
        var masks = OneTorchThread.Run(() => ConceptLocaliser.Masks(fixture.Detector, examples.Select(e => e.Image).ToList(), new LocaliserSettings()));
        Assert.All(masks.OfType<RasterImage>(), m => Assert.Equal((28, 28, 1), (m.Width, m.Height, m.Channels))); // back in the image's frame

        var quality = MaskQuality.Measure(masks, truth, margin: 2);
        Assert.Equal(examples.Count(e => e.Truth.Stamped), quality.Carrying);
        Assert.True(quality.DetectionRecall.Rate >= 0.9, $"recall {quality.DetectionRecall.Rate:P1}");
        Assert.True(quality.MeanIoU >= 0.35, $"mean IoU {quality.MeanIoU:F2}");
        Assert.True(quality.CoverageWithMargin >= 0.8, $"coverage with margin {quality.CoverageWithMargin:P1}");

        // The same masks read against the logo mirrored to the bottom-left corner: a mask in the wrong place (a frame
        // offset, a flipped axis) would score as well there as here.
        var mirrored = truth.Select(t => t is null ? null : Mirror(t)).ToList();
        var wrongPlace = MaskQuality.Measure(masks, mirrored, margin: 2);
        Assert.True(wrongPlace.MeanIoU < quality.MeanIoU / 3, $"IoU against the mirrored logo {wrongPlace.MeanIoU:F2}, against the logo {quality.MeanIoU:F2}");
    }

    [Fact]
    public void Mask_quality_counts_missed_images_and_hidden_garment()
    {
        var truth = ConceptMasks.FromRegion(10, 10, new PixelRect(6, 6, 4, 4));          // 16 concept pixels
        var exact = ConceptMasks.FromRegion(10, 10, new PixelRect(6, 6, 4, 4));
        var half = ConceptMasks.FromRegion(10, 10, new PixelRect(6, 6, 2, 4));            // 8 of them
        var wide = ConceptMasks.FromRegion(10, 10, new PixelRect(4, 4, 6, 6));            // all 16 and 20 more
        var q = MaskQuality.Measure([exact, half, wide, null, exact], [truth, truth, truth, truth, null], margin: 0);
        Assert.Equal((5, 4, 4), (q.Images, q.Carrying, q.Flagged));
        Assert.Equal(3.0 / 4, q.DetectionRecall.Rate);        // the fourth carries the logo and got no mask
        Assert.Equal(3.0 / 4, q.DetectionPrecision.Rate);     // the fifth got a mask and carries nothing
        Assert.Equal((1 + 0.5 + 16.0 / 36 + 0) / 4, q.MeanIoU, 12);
        Assert.Equal((16 + 8 + 16 + 0) / 64.0, q.Coverage, 12);
        Assert.Equal(20 / (4 * 84.0), q.MaskedShareOfRest, 12);
        // With a 2-pixel margin the half mask grows over the rest of the logo.
        Assert.Equal((16 + 16 + 16 + 0) / 64.0, MaskQuality.Measure([exact, half, wide, null], [truth, truth, truth, truth], margin: 2).CoverageWithMargin, 12);
    }

    static RasterImage Mirror(RasterImage mask)
    {
        var flipped = RasterImage.Blank(mask.Width, mask.Height, 1);
        for (int y = 0; y < mask.Height; y++)
            for (int x = 0; x < mask.Width; x++)
                flipped.Pixels[y * mask.Width + (mask.Width - 1 - x)] = mask.Pixels[y * mask.Width + x];
        return flipped;
    }
}
