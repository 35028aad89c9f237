
namespace Excise.Imaging;

/// <summary>Resampling done in plain code so results are identical on every platform and Skia build.</summary>
public static class Resampling
{
    public static RasterImage Bilinear(RasterImage source, int width, int height)
    {
        if (width <= 0 || height <= 0)
            throw new ArgumentOutOfRangeException(nameof(width), $"Resize target must be positive, got {width}x{height}.");
        if (width == source.Width && height == source.Height) return source.Copy();
        int channels = source.Channels;
        var output = new byte[width * height * channels];
        double scaleX = (double)source.Width / width, scaleY = (double)source.Height / height;
        for (int y = 0; y < height; y++)
        {
            double sy = Math.Clamp((y + 0.5) * scaleY - 0.5, 0, source.Height - 1);
            int y0 = (int)sy, y1 = Math.Min(y0 + 1, source.Height - 1);
            double fy = sy - y0;
            for (int x = 0; x < width; x++)
            {
                double sx = Math.Clamp((x + 0.5) * scaleX - 0.5, 0, source.Width - 1);
                int x0 = (int)sx, x1 = Math.Min(x0 + 1, source.Width - 1);
                double fx = sx - x0;
                for (int c = 0; c < channels; c++)
                {
                    double top = source[x0, y0, c] * (1 - fx) + source[x1, y0, c] * fx;
                    double bottom = source[x0, y1, c] * (1 - fx) + source[x1, y1, c] * fx;
                    output[(y * width + x) * channels + c] = (byte)Math.Clamp(Math.Round(top * (1 - fy) + bottom * fy), 0, 255);
                }
            }
        }
        return new RasterImage(width, height, channels, output);
    }

    public static RasterImage NearestUpscale(RasterImage source, int factor)
    {
        if (factor < 1) throw new ArgumentOutOfRangeException(nameof(factor), $"Upscale factor must be >= 1, got {factor}.");
        if (factor == 1) return source.Copy();
        int width = source.Width * factor, height = source.Height * factor, channels = source.Channels;
        var output = new byte[width * height * channels];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                Array.Copy(source.Pixels, ((y / factor) * source.Width + x / factor) * channels, output, (y * width + x) * channels, channels);
        return new RasterImage(width, height, channels, output);
    }
}
