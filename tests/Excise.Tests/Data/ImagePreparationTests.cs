using Excise.Data;
using Excise.Imaging;

namespace Excise.Tests.Data;

/// <summary>Users' images as they come: any size, grey or colour, brought to the model as diffusers' scripts bring them.</summary>
public class ImagePreparationTests
{
    /// <summary>A 64×48 RGB picture: a red band on the left 8 columns, a blue band on the right 8, green in between.</summary>
    static RasterImage Banded()
    {
        var image = RasterImage.Blank(64, 48, 3);
        for (int y = 0; y < 48; y++)
            for (int x = 0; x < 64; x++)
                image.Pixels[(y * 64 + x) * 3 + (x < 8 ? 0 : x >= 56 ? 2 : 1)] = 255;
        return image;
    }

    [Fact]
    public void A_landscape_picture_is_shrunk_by_its_shorter_side_and_cropped_at_the_centre_not_squashed()
    {
        var fitted = Banded().FitTo(32, 3);
        Assert.Equal((32, 32, 3), (fitted.Width, fitted.Height, fitted.Channels));
        // 64×48 → 42×32 (torchvision truncates the longer side), then the centre 32 columns (5 cut from each side): the
        // 8-pixel bands, about 5 columns once resized, are cut away but for the blur of the edge column; a squash to 32×32
        // would keep them as 4-column bands.
        for (int x = 1; x < 31; x++)
        {
            Assert.True(fitted[x, 16, 1] > 200, $"column {x} should be green, got {fitted[x, 16, 0]},{fitted[x, 16, 1]},{fitted[x, 16, 2]}");
            Assert.True(fitted[x, 16, 0] < 60 && fitted[x, 16, 2] < 60, $"column {x} still shows a band");
        }
        Assert.Equal((42, 32), RasterImage.ShorterSideSize(64, 48, 32));
        Assert.Equal((32, 42), RasterImage.ShorterSideSize(48, 64, 32));
    }

    [Fact]
    public void Shrinking_averages_what_each_pixel_covers_instead_of_sampling_it()
    {
        // A white column every third, shrunk 8-fold: every output pixel covers about a third white.
        var stripes = RasterImage.Blank(256, 256, 1);
        for (int y = 0; y < 256; y++)
            for (int x = 0; x < 256; x += 3) stripes.Pixels[y * 256 + x] = 255;
        var shrunk = stripes.ShorterSideTo(32);
        Assert.All(shrunk.Pixels, p => Assert.InRange(p, 65, 105));
        // Plain bilinear reads the two source pixels nearest each output pixel: 0, ½ or 1 white, which aliases into bands.
        Assert.Contains(stripes.ResizeTo(32, 32).Pixels, p => p is < 40);
    }

    [Fact]
    public void Colour_for_a_grey_model_is_refused_naming_both_fixes_and_converts_when_asked()
    {
        var colour = Banded();
        var strict = new ImagePreparation(32, Channels: 1, CenterCrop: true, RandomFlip: false, ToGrey: false);
        var refused = Assert.Throws<InvalidDataException>(() => strict.Prepare(colour, "photo-7"));
        Assert.Contains("photo-7", refused.Message);
        Assert.Contains("model.in_channels = 3", refused.Message);
        Assert.Contains("data.to_grey = true", refused.Message);

        var grey = (strict with { ToGrey = true }).Prepare(colour, "photo-7");
        Assert.Equal(1, grey.Channels);
        Assert.Equal(colour.ToGrey().FitTo(32, 1).Pixels, grey.Pixels);

        // Grey saved as RGB loses nothing by the conversion, so it needs no option; grey for a colour model is repeated.
        var greyAsRgb = RasterImage.Blank(32, 32, 1, 90).ToRgb();
        Assert.Equal(RasterImage.Blank(32, 32, 1, 90).Pixels, strict.Prepare(greyAsRgb, "g").Pixels);
        var forColour = strict with { Channels = 3 };
        Assert.Equal(3, forColour.Prepare(RasterImage.Blank(32, 32, 1, 90), "g").Channels);
        var latent = Assert.Throws<InvalidDataException>(() => (strict with { Channels = 4 }).Prepare(greyAsRgb, "g"));
        Assert.Contains("VAE", latent.Message);
    }

    [Fact]
    public void Without_centre_crop_an_image_keeps_its_aspect_for_a_crop_drawn_each_step_and_the_log_says_so()
    {
        var random = new ImagePreparation(32, Channels: 3, CenterCrop: false, RandomFlip: true, ToGrey: false);
        var small = RasterImage.Blank(28, 28, 3, 10);
        var prepared = new[] { random.Prepare(Banded(), "a"), random.Prepare(small, "b") };
        Assert.Equal((42, 32), (prepared[0].Width, prepared[0].Height));
        Assert.True(random.NeedsCrop(prepared[0]));
        Assert.Equal((32, 32), (prepared[1].Width, prepared[1].Height)); // Fashion-MNIST's case: padded, as before
        Assert.False(random.NeedsCrop(prepared[1]));
        Assert.Equal((42, 32), random.PreparedSize(64, 48));
        Assert.Equal((32, 32), (random with { CenterCrop = true }).PreparedSize(64, 48));

        var log = random.Describe([Banded(), small], prepared);
        Assert.Contains("2 sizes", log);
        Assert.Contains("1 resized to a shorter side of 32", log);
        Assert.Contains("1 padded to 32×32", log);
        Assert.Contains("drawn each step", log);
        Assert.Contains("mirrored", log);
        var asIs = new ImagePreparation(32, 1, false, false, false);
        Assert.EndsWith("used as they are.", asIs.Describe([RasterImage.Blank(32, 32, 1)], [RasterImage.Blank(32, 32, 1)]));
    }

    [Fact]
    public void A_mask_gets_its_images_geometry()
    {
        var mask = RasterImage.Blank(64, 48, 1);
        for (int y = 0; y < 48; y++)
            for (int x = 56; x < 64; x++) mask.Pixels[y * 64 + x] = ConceptMasks.Concept; // the blue band
        var random = new ImagePreparation(32, 3, CenterCrop: false, RandomFlip: false, ToGrey: false);
        var kept = random.PrepareMask(mask);
        Assert.Equal((42, 32), (kept.Width, kept.Height));
        Assert.True(kept[41, 10] > 0 && kept[30, 10] == 0);
        var centred = (random with { CenterCrop = true }).PrepareMask(mask);
        Assert.Equal((32, 32), (centred.Width, centred.Height));
        Assert.True(centred[31, 10] < 128, "the centre crop cuts the band away, from the mask as from the image");
    }
}
