using Excise.Data;
using Excise.Imaging;

namespace Excise.Tests.Data;

public class ImagingTests
{
    private static RasterImage Gradient(int width, int height, int channels)
    {
        var pixels = new byte[width * height * channels];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (byte)(i * 37 % 256);
        return new RasterImage(width, height, channels, pixels);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void Png_round_trip_keeps_pixels_and_channel_count(int channels)
    {
        using var temp = new TempDirectory();
        var image = Gradient(13, 7, channels);
        var path = temp.File("image.png");
        PngIO.Save(image, path);
        var loaded = PngIO.Load(path);
        Assert.True(loaded.SameContentAs(image), $"PNG round trip changed a {channels}-channel image");
    }

    [Theory]
    [InlineData(100_000u, 100_000u)]
    [InlineData(8193u, 8192u)]
    [InlineData(9000u, 9000u)]
    public void A_forged_huge_size_is_refused_before_decoding(uint width, uint height)
    {
        using var temp = new TempDirectory();
        var path = temp.File("huge.png");
        File.WriteAllBytes(path, Reliability.PngChunks.WithSize(PngIO.Encode(Gradient(4, 4, 3)), width, height));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<InvalidDataException>(() => PngIO.Load(path));
        Assert.Contains(path, error.Message);
        Assert.Contains($"{width}x{height}", error.Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20);
        Assert.Throws<InvalidDataException>(() => Logo.FromFile(path));
    }

    [Fact]
    public void Undecodable_file_names_the_path()
    {
        using var temp = new TempDirectory();
        var path = temp.File("broken.png");
        File.WriteAllText(path, "this is not an image");
        var error = Assert.Throws<InvalidDataException>(() => PngIO.Load(path));
        Assert.Contains(path, error.Message);
    }

    [Fact]
    public void PadTo_centres_the_image_on_black()
    {
        var image = RasterImage.Blank(28, 28, 1, 200);
        var padded = image.PadTo(32);
        Assert.Equal((32, 32), (padded.Width, padded.Height));
        Assert.Equal(0, padded[1, 1]);
        Assert.Equal(200, padded[2, 2]);
        Assert.Equal(200, padded[29, 29]);
        Assert.Equal(0, padded[30, 30]);
        Assert.Equal(28 * 28 * 200L, padded.Pixels.Sum(p => (long)p));
        Assert.Throws<ArgumentOutOfRangeException>(() => image.PadTo(20));
    }

    [Fact]
    public void ResizeTo_is_bilinear_with_half_pixel_centres()
    {
        var twoByOne = new RasterImage(2, 1, 1, [0, 100]);
        var wide = twoByOne.ResizeTo(4, 1);
        // Target centres 0.5,1.5,2.5,3.5 map to source -0.25(clamped),0.25,0.75,1.25(clamped): 0, 25, 75, 100 like torch.
        Assert.Equal(new byte[] { 0, 25, 75, 100 }, wide.Pixels);
        var constant = RasterImage.Blank(28, 28, 3, 90).ResizeTo(32, 32);
        Assert.All(constant.Pixels, p => Assert.Equal(90, p));
    }

    [Fact]
    public void Upscale_repeats_each_pixel_in_a_block()
    {
        var image = Gradient(3, 2, 3);
        var big = image.Upscale(3);
        Assert.Equal((9, 6), (big.Width, big.Height));
        for (int y = 0; y < 6; y++)
            for (int x = 0; x < 9; x++)
                for (int c = 0; c < 3; c++)
                    Assert.Equal(image[x / 3, y / 3, c], big[x, y, c]);
    }

    [Fact]
    public void Grid_mixes_grey_and_rgb_and_can_carry_labels()
    {
        var grid = ImageGrid.Compose([RasterImage.Blank(4, 4, 1, 255), RasterImage.Blank(6, 5, 3, 10)], columns: 1, padding: 1,
            labels: ["grey", "rgb"]);
        Assert.Equal(3, grid.Channels);
        Assert.Equal(6 + 2, grid.Width);
        Assert.Equal(2 * (5 + 12) + 3, grid.Height);
        Assert.Equal(255, grid[1, 1, 0]);
        Assert.Equal(10, grid[1, 1 + 5 + 12 + 1, 2]);
    }

    [Fact]
    public void RasterImage_rejects_a_buffer_of_the_wrong_size()
    {
        var error = Assert.Throws<ArgumentException>(() => new RasterImage(28, 28, 1, new byte[100]));
        Assert.Contains("784", error.Message);
        Assert.Throws<ArgumentException>(() => new RasterImage(2, 2, 2, new byte[8]));
    }
}
