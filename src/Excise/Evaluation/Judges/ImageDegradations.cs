using Excise.Data;
using Excise.Imaging;

namespace Excise.Evaluation.Judges;

/// <summary>
/// The ways a generated logo falls short of a clean stamp (blur, noise, displacement, missing parts), applied to
/// 8-bit images. The detector trains with them and is evaluated on them, so its recall on imperfect logos is measured.
/// </summary>
public static class ImageDegradations
{
    /// <summary>Separable Gaussian blur; borders replicate the edge pixel.</summary>
    public static RasterImage GaussianBlur(RasterImage image, double sigma)
    {
        if (double.IsNaN(sigma) || sigma < 0) throw new ArgumentOutOfRangeException(nameof(sigma), sigma, "Blur sigma must be >= 0 px.");
        if (sigma == 0) return image.Copy();
        var blurred = GaussianBlur(image.Pixels.Select(p => (float)p).ToArray(), image.Width, image.Height, image.Channels, sigma);
        return image with { Pixels = blurred.Select(ToByte).ToArray() };
    }

    /// <summary>Separable Gaussian blur of interleaved float planes (no rounding between passes); borders replicate the edge.</summary>
    internal static float[] GaussianBlur(float[] values, int w, int h, int c, double sigma)
    {
        int radius = Math.Max(1, (int)Math.Ceiling(3 * sigma));
        var kernel = new float[2 * radius + 1];
        for (int i = -radius; i <= radius; i++) kernel[i + radius] = (float)Math.Exp(-i * i / (2 * sigma * sigma));
        float total = kernel.Sum();
        for (int i = 0; i < kernel.Length; i++) kernel[i] /= total;

        var across = new float[values.Length];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int ch = 0; ch < c; ch++)
                {
                    float sum = 0;
                    for (int k = -radius; k <= radius; k++)
                        sum += kernel[k + radius] * values[(y * w + Math.Clamp(x + k, 0, w - 1)) * c + ch];
                    across[(y * w + x) * c + ch] = sum;
                }
        var result = new float[values.Length];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int ch = 0; ch < c; ch++)
                {
                    float sum = 0;
                    for (int k = -radius; k <= radius; k++)
                        sum += kernel[k + radius] * across[(Math.Clamp(y + k, 0, h - 1) * w + x) * c + ch];
                    result[(y * w + x) * c + ch] = sum;
                }
        return result;
    }

    /// <summary>
    /// Adds Gaussian noise of <paramref name="sigma"/> in the models' [−1, 1] pixel units (0.1 ≈ 12.75 grey levels),
    /// clamped to the valid range as a decoded sample would be.
    /// </summary>
    public static RasterImage AddNoise(RasterImage image, double sigma, Random random)
    {
        if (double.IsNaN(sigma) || sigma < 0) throw new ArgumentOutOfRangeException(nameof(sigma), sigma, "Noise sigma must be >= 0.");
        var result = new byte[image.Pixels.Length];
        double scale = sigma * 127.5;
        for (int i = 0; i < result.Length; i++) result[i] = ToByte((float)(image.Pixels[i] + scale * Normal(random)));
        return image with { Pixels = result };
    }

    /// <summary>Moves the content by (dx, dy) pixels; uncovered pixels become black (Fashion-MNIST's background).</summary>
    public static RasterImage Translate(RasterImage image, int dx, int dy)
    {
        var result = new byte[image.Pixels.Length];
        int w = image.Width, h = image.Height, c = image.Channels;
        for (int y = 0; y < h; y++)
        {
            int sy = y - dy;
            if (sy < 0 || sy >= h) continue;
            for (int x = 0; x < w; x++)
            {
                int sx = x - dx;
                if (sx < 0 || sx >= w) continue;
                Array.Copy(image.Pixels, (sy * w + sx) * c, result, (y * w + x) * c, c);
            }
        }
        return image with { Pixels = result };
    }

    /// <summary>
    /// A stamp with half of it missing: inside <paramref name="region"/>, the half on <paramref name="side"/> shows
    /// the unstamped <paramref name="original"/> again.
    /// </summary>
    public static RasterImage RemoveHalf(RasterImage stamped, RasterImage original, PixelRect region, HalfSide side)
    {
        if (!stamped.SameSizeAs(original))
            throw new ArgumentException($"Stamped ({stamped.Width}x{stamped.Height}x{stamped.Channels}) and original ({original.Width}x{original.Height}x{original.Channels}) images differ in size.");
        var result = (byte[])stamped.Pixels.Clone();
        int midX = region.Left + region.Width / 2, midY = region.Top + region.Height / 2, c = stamped.Channels;
        for (int y = Math.Max(0, region.Top); y < Math.Min(stamped.Height, region.Bottom); y++)
            for (int x = Math.Max(0, region.Left); x < Math.Min(stamped.Width, region.Right); x++)
            {
                bool removed = side switch
                {
                    HalfSide.Left => x < midX,
                    HalfSide.Right => x >= midX,
                    HalfSide.Top => y < midY,
                    HalfSide.Bottom => y >= midY,
                    _ => throw new ArgumentOutOfRangeException(nameof(side), side, "Unknown half."),
                };
                if (removed) Array.Copy(original.Pixels, (y * stamped.Width + x) * c, result, (y * stamped.Width + x) * c, c);
            }
        return stamped with { Pixels = result };
    }

    private static bool SameSizeAs(this RasterImage a, RasterImage b) => a.Width == b.Width && a.Height == b.Height && a.Channels == b.Channels;

    internal static byte ToByte(float value) => (byte)Math.Clamp(MathF.Round(value), 0, 255);

    /// <summary>Box–Muller standard normal.</summary>
    internal static double Normal(Random random)
    {
        double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}

public enum HalfSide { Left, Right, Top, Bottom }
