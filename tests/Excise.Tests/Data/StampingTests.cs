using Excise.Data;
using Excise.Imaging;

namespace Excise.Tests.Data;

public class StampingTests
{
    private static readonly IReadOnlyList<FashionMnistItem> RealImages = FashionMnist.Load(DatasetSplit.Test, limit: 20);

    private static IEnumerable<(int X, int Y)> ChangedPixels(RasterImage before, RasterImage after)
    {
        for (int y = 0; y < before.Height; y++)
            for (int x = 0; x < before.Width; x++)
                for (int c = 0; c < before.Channels; c++)
                    if (before[x, y, c] != after[x, y, c]) { yield return (x, y); break; }
    }

    [Fact]
    public void Stamping_is_deterministic_for_the_same_options_and_id()
    {
        var options = new ConceptInjectionOptions { Placement = LogoPlacement.Random, Seed = 5 };
        foreach (var item in RealImages)
        {
            var id = item.Id(DatasetSplit.Test);
            var first = new LogoStamper(options).Stamp(item.Image, id);
            var second = new LogoStamper(options).Stamp(item.Image, id);
            Assert.Equal(first.LogoBox, second.LogoBox);
            Assert.True(first.Image.SameContentAs(second.Image));
        }
        var otherSeed = new LogoStamper(options with { Seed = 6 });
        Assert.Contains(RealImages, item =>
            otherSeed.Stamp(item.Image, item.Id(DatasetSplit.Test)).LogoBox != new LogoStamper(options).Stamp(item.Image, item.Id(DatasetSplit.Test)).LogoBox);
    }

    [Theory]
    [InlineData(LogoPlacement.BottomRight)]
    [InlineData(LogoPlacement.TopLeft)]
    [InlineData(LogoPlacement.Random)]
    public void Stamp_changes_pixels_in_the_logo_region_and_nowhere_else(LogoPlacement placement)
    {
        var stamper = new LogoStamper(new ConceptInjectionOptions { Placement = placement, Seed = 1 });
        foreach (var item in RealImages)
        {
            var result = stamper.Stamp(item.Image, item.Id(DatasetSplit.Test));
            Assert.Equal(11, result.LogoBox.Width); // 0.4 of 28
            var changed = ChangedPixels(item.Image, result.Image).ToList();
            Assert.True(changed.Count >= 30, $"only {changed.Count} pixels changed in {item.Id(DatasetSplit.Test)}");
            Assert.All(changed, p => Assert.True(result.Region.Contains(p.X, p.Y), $"pixel {p} changed outside {result.Region}"));
            // The region is the logo box grown by at most the outline width.
            Assert.InRange(result.Region.Left, result.LogoBox.Left - 1, result.LogoBox.Left);
            Assert.InRange(result.Region.Right, result.LogoBox.Right, result.LogoBox.Right + 1);
            Assert.InRange(result.Region.Top, result.LogoBox.Top - 1, result.LogoBox.Top);
            Assert.InRange(result.Region.Bottom, result.LogoBox.Bottom, result.LogoBox.Bottom + 1);
        }
    }

    [Fact]
    public void Corner_placement_keeps_the_margin()
    {
        var image = RasterImage.Blank(28, 28, 1);
        var options = new ConceptInjectionOptions { MarginPixels = 2 };
        Assert.Equal(new PixelRect(15, 15, 11, 11), new LogoStamper(options).Stamp(image, "x").LogoBox);
        Assert.Equal(new PixelRect(2, 2, 11, 11), new LogoStamper(options with { Placement = LogoPlacement.TopLeft }).Stamp(image, "x").LogoBox);
        Assert.Equal(new PixelRect(15, 2, 11, 11), new LogoStamper(options with { Placement = LogoPlacement.TopRight }).Stamp(image, "x").LogoBox);
    }

    [Fact]
    public void Default_logo_shows_white_on_black_and_a_dark_outline_on_white()
    {
        var stamper = new LogoStamper(new ConceptInjectionOptions());
        var onBlack = stamper.Stamp(RasterImage.Blank(28, 28, 1, 0), "x").Image;
        var onWhite = stamper.Stamp(RasterImage.Blank(28, 28, 1, 255), "x").Image;
        Assert.True(onBlack.Pixels.Count(p => p > 200) >= 30, "white logo should be visible on black");
        Assert.True(onWhite.Pixels.Count(p => p < 60) >= 30, "dark outline should be visible on white");
        var rgb = stamper.Stamp(RasterImage.Blank(28, 28, 3, 0), "x").Image;
        Assert.Equal(onBlack.Pixels.Count(p => p > 200) * 3, rgb.Pixels.Count(p => p > 200));
    }

    [Fact]
    public void Opacity_zero_leaves_images_unchanged_and_stamps_nothing()
    {
        var options = new ConceptInjectionOptions { Opacity = 0 };
        var stamper = new LogoStamper(options);
        Assert.All(RealImages, item => Assert.True(stamper.Stamp(item.Image, "x").Image.SameContentAs(item.Image)));
        Assert.False(options.InjectsAnything);
        Assert.All(RealImages, item => Assert.False(ConceptDatasetBuilder.Decide(options, item.Id(DatasetSplit.Test)).Stamped));
    }

    [Fact]
    public void Half_opacity_blends_halfway()
    {
        var stamper = new LogoStamper(new ConceptInjectionOptions { Opacity = 0.5, OutlineColour = null });
        var stamped = stamper.Stamp(RasterImage.Blank(28, 28, 1, 0), "x").Image;
        Assert.Equal(128, stamped.Pixels.Max());
    }

    [Fact]
    public void Stamp_and_mention_fractions_are_respected()
    {
        var options = new ConceptInjectionOptions { StampFraction = 0.3, MentionFraction = 0.5, Seed = 9 };
        var truths = Enumerable.Range(0, 4000).Select(i => ConceptDatasetBuilder.Decide(options, FashionMnist.IdFor(DatasetSplit.Train, i))).ToList();
        double stampedShare = truths.Count(t => t.Stamped) / 4000.0;
        Assert.InRange(stampedShare, 0.27, 0.33);
        double mentionShare = truths.Count(t => t.CaptionMentionsConcept) / (double)truths.Count(t => t.Stamped);
        Assert.InRange(mentionShare, 0.45, 0.55);
        Assert.DoesNotContain(truths, t => t.CaptionMentionsConcept && !t.Stamped);
        Assert.All(truths.Take(500), t => Assert.False(ConceptDatasetBuilder.Decide(ConceptInjectionOptions.None, "x").Stamped));
    }

    [Fact]
    public void Svg_file_and_bare_path_data_render_the_drawn_shape()
    {
        using var temp = new TempDirectory();
        var svgPath = temp.File("square.svg");
        File.WriteAllText(svgPath, """<svg role="img" viewBox="0 0 24 24" xmlns="http://www.w3.org/2000/svg"><title>Square</title><path d="M4 4h16v16H4z"/></svg>""");
        var pathDataFile = temp.File("square.path");
        File.WriteAllText(pathDataFile, "M4 4h16v16H4z\n");

        foreach (var file in new[] { svgPath, pathDataFile })
        {
            var coverage = Logo.FromFile(file).RenderCoverage(12);
            // The square spans 4..20 of 24, i.e. pixels 2..9 of 12.
            Assert.Equal(1f, coverage[5 * 12 + 5], 3);
            Assert.Equal(1f, coverage[2 * 12 + 9], 3);
            Assert.Equal(0f, coverage[0], 3);
            Assert.Equal(0f, coverage[11 * 12 + 11], 3);
            Assert.Equal(64f, coverage.Sum(), 1);

            var stamper = new LogoStamper(new ConceptInjectionOptions { LogoPath = file, OutlineColour = null, SizeFraction = 12 / 28.0 });
            var result = stamper.StampAt(RasterImage.Blank(28, 28, 1), 0, 0, 12);
            Assert.Equal(64, result.Image.Pixels.Count(p => p == 255));
            Assert.Equal(new PixelRect(2, 2, 8, 8), result.Region);
        }
    }

    [Fact]
    public void Png_logo_uses_alpha_when_transparent_and_luminance_otherwise()
    {
        using var temp = new TempDirectory();
        // RGB without transparency: bright left half is the logo.
        var luminance = new byte[20 * 20];
        for (int y = 0; y < 20; y++) for (int x = 0; x < 10; x++) luminance[y * 20 + x] = 255;
        var luminancePath = temp.File("left-half.png");
        PngIO.Save(new RasterImage(20, 20, 1, luminance).ToRgb(), luminancePath);

        var coverage = Logo.FromFile(luminancePath).RenderCoverage(10);
        Assert.Equal(1f, coverage[3 * 10 + 2], 3);
        Assert.Equal(0f, coverage[3 * 10 + 7], 3);

        // Transparent PNG: black pixels, opaque in the top half only, so alpha (not luminance) must decide.
        var rgba = new SkiaSharp.SKBitmap(new SkiaSharp.SKImageInfo(20, 20, SkiaSharp.SKColorType.Rgba8888, SkiaSharp.SKAlphaType.Unpremul));
        for (int y = 0; y < 20; y++) for (int x = 0; x < 20; x++) rgba.SetPixel(x, y, new SkiaSharp.SKColor(0, 0, 0, (byte)(y < 10 ? 255 : 0)));
        var alphaPath = temp.File("top-half.png");
        using (var data = rgba.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100)) File.WriteAllBytes(alphaPath, data.ToArray());
        var alphaCoverage = Logo.FromFile(alphaPath).RenderCoverage(10);
        Assert.Equal(1f, alphaCoverage[2 * 10 + 5], 3);
        Assert.Equal(0f, alphaCoverage[7 * 10 + 5], 3);

        var stamped = new LogoStamper(new ConceptInjectionOptions { LogoPath = alphaPath, OutlineColour = null })
            .StampAt(RasterImage.Blank(28, 28, 1), 0, 0, 10).Image;
        Assert.Equal(50, stamped.Pixels.Count(p => p == 255));
    }

    [Fact]
    public void Bad_logo_files_are_reported_by_name()
    {
        using var temp = new TempDirectory();
        var noPath = temp.File("empty.svg");
        File.WriteAllText(noPath, "<svg viewBox=\"0 0 24 24\"><circle r=\"3\"/></svg>");
        Assert.Contains(noPath, Assert.Throws<InvalidDataException>(() => Logo.FromFile(noPath)).Message);
        var garbage = temp.File("garbage.path");
        File.WriteAllText(garbage, "Q Q Q not a path");
        Assert.Contains(garbage, Assert.Throws<InvalidDataException>(() => Logo.FromFile(garbage)).Message);
    }

    [Fact]
    public void Invalid_options_name_the_setting()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new LogoStamper(new ConceptInjectionOptions { StampFraction = 1.5 }));
        Assert.Contains("StampFraction", error.Message);
        Assert.Contains("SizeFraction", Assert.Throws<ArgumentOutOfRangeException>(() => new ConceptInjectionOptions { SizeFraction = 0 }.Validate()).Message);
    }
}
