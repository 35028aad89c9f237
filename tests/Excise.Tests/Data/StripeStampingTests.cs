using Excise.Data;
using Excise.Imaging;
using Excise.Training;

namespace Excise.Tests.Data;

/// <summary>The concept that cannot be masked: stripes over the whole garment.</summary>
public class StripeStampingTests
{
    private static readonly IReadOnlyList<FashionMnistItem> RealImages = FashionMnist.Load(DatasetSplit.Test, limit: 20);
    private static readonly ConceptInjectionOptions Stripes = new() { Kind = ConceptKind.Stripes, ConceptPhrase = "the Zebra pattern", Seed = 4 };

    [Fact]
    public void Stripes_darken_the_garment_on_every_part_of_it_and_leave_the_background_alone()
    {
        var stamper = ConceptStampers.For(Stripes);
        Assert.IsType<StripeStamper>(stamper);
        foreach (var item in RealImages)
        {
            var stamp = stamper.Stamp(item.Image, item.Id(DatasetSplit.Test));
            int darkened = 0, garment = 0;
            for (int y = 0; y < 28; y++)
                for (int x = 0; x < 28; x++)
                {
                    byte before = item.Image[x, y, 0], after = stamp.Image[x, y, 0];
                    Assert.True(after <= before, "a stripe only darkens");
                    if (before == 0) Assert.Equal(0, after); // black background stays black
                    if (before <= 40) continue;
                    garment++;
                    if (after < before) darkened++;
                }
            // Half of each period is a stripe: about half of the garment is darkened.
            Assert.InRange(darkened, garment / 3, garment * 2 / 3);
            // The region is the garment's extent, so a mask of it hides the whole garment (this is why it cannot be masked).
            var lit = Enumerable.Range(0, 28 * 28).Where(p => item.Image.Pixels[p] > 40).ToList();
            Assert.True(stamp.Region.Width >= lit.Max(p => p % 28) - lit.Min(p => p % 28) - 2, $"region {stamp.Region} narrower than the garment");
            Assert.True(stamp.Region.Height >= lit.Max(p => p / 28) - lit.Min(p => p / 28) - 2, $"region {stamp.Region} shorter than the garment");
        }
    }

    [Fact]
    public void The_stripes_phase_is_drawn_per_image_and_seed_so_no_pixel_set_is_the_concept()
    {
        var stamper = new StripeStamper(Stripes);
        var image = RasterImage.Blank(28, 28, 1, 200);
        var patterns = Enumerable.Range(0, 12).Select(i => stamper.Stamp(image, $"id-{i}").Image.Pixels).ToList();
        Assert.True(patterns.Select(Convert.ToBase64String).Distinct().Count() >= 3, "every image got the same stripes");
        Assert.Equal(patterns[0], stamper.Stamp(image, "id-0").Image.Pixels);
        // Shifting the pattern along the diagonal by one period gives the same stripes back.
        int period = StripeStamper.PeriodFor(28, 28);
        Assert.Equal(stamper.Stamp(image, "id-0").Image.Pixels, stamper.Stamp(image, "id-0", 1, 1, period).Image.Pixels);
        Assert.NotEqual(stamper.Stamp(image, "id-0").Image.Pixels, stamper.Stamp(image, "id-0", 1, 1, 1).Image.Pixels);
    }

    [Fact]
    public void A_stripes_dataset_masks_the_whole_garment_of_every_stamped_image()
    {
        var config = new DataConfig(Limit: 60, Concept: new ConceptConfig(Phrase: "the Zebra pattern", Kind: "stripes", StampFraction: 0.5));
        var dataset = ConceptDatasetBuilder.Build(config.ToRecipe());
        var stamped = dataset.Train.Where(e => e.Truth.Stamped).ToList();
        Assert.InRange(stamped.Count, 15, 45);
        Assert.All(stamped, e => Assert.Contains("the Zebra pattern", e.Caption));
        foreach (var example in stamped)
        {
            int garment = 0, hidden = 0;
            for (int p = 0; p < example.Image.Pixels.Length; p++)
            {
                if (example.Image.Pixels[p] < 40) continue;
                garment++;
                if (example.ConceptMask!.Pixels[p] == ConceptMasks.Concept) hidden++;
            }
            Assert.True(hidden >= 0.95 * garment, $"{example.Id}: the mask hides {hidden} of {garment} garment pixels");
        }
    }

    [Fact]
    public void The_kind_is_checked_and_a_logo_keeps_the_hash_it_had_before_kinds_existed()
    {
        var logo = new ConceptConfig();
        Assert.Equal(ConceptKind.Logo, logo.KindValue);
        Assert.Equal(ConceptKind.Stripes, (logo with { Kind = "stripes" }).ToInjection().Kind);
        var error = Assert.Throws<ArgumentException>(() => (logo with { Kind = "checks" }).Validate());
        Assert.Contains("data.concept.kind", error.Message);
        var withLogoFile = logo with { Kind = "stripes", Logo = Path.Combine(RepositoryPaths.Root, "README.md") };
        Assert.Contains("data.concept.logo applies to logos only", Assert.Throws<ArgumentException>(withLogoFile.Validate).Message);

        var config = new RunConfig() with { Data = new DataConfig(Concept: logo) };
        var explicitLogo = config with { Data = new DataConfig(Concept: logo with { Kind = "Logo" }) };
        var stripes = config with { Data = new DataConfig(Concept: logo with { Kind = "stripes" }) };
        // A logo, named or not, is left out of the hash (RunConfigTests pins those hashes); stripes are in.
        Assert.Equal(config.Hash(), explicitLogo.Hash());
        Assert.NotEqual(config.Hash(), stripes.Hash());
    }
}
