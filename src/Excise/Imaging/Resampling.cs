
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

    /// <summary>
    /// Bilinear with the triangle filter widened by the shrink factor, as PIL's (and torchvision's antialiased) bilinear
    /// resize does: each output pixel averages every source pixel it covers, so a photo shrunk 16-fold keeps its content
    /// instead of aliasing into a few sampled pixels. Separable: rows first, then columns.
    /// </summary>
    public static RasterImage Antialiased(RasterImage source, int width, int height)
    {
        if (width <= 0 || height <= 0)
            throw new ArgumentOutOfRangeException(nameof(width), $"Resize target must be positive, got {width}x{height}.");
        int channels = source.Channels;
        var (columnsFrom, columnWeights) = TriangleWeights(source.Width, width);
        var (rowsFrom, rowWeights) = TriangleWeights(source.Height, height);
        var horizontal = new double[source.Height * width * channels];
        for (int y = 0; y < source.Height; y++)
            for (int x = 0; x < width; x++)
                for (int k = 0; k < columnWeights[x].Length; k++)
                {
                    int from = (y * source.Width + columnsFrom[x] + k) * channels, to = (y * width + x) * channels;
                    for (int c = 0; c < channels; c++) horizontal[to + c] += columnWeights[x][k] * source.Pixels[from + c];
                }
        var output = new byte[width * height * channels];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                for (int c = 0; c < channels; c++)
                {
                    double sum = 0;
                    for (int k = 0; k < rowWeights[y].Length; k++) sum += rowWeights[y][k] * horizontal[((rowsFrom[y] + k) * width + x) * channels + c];
                    output[(y * width + x) * channels + c] = (byte)Math.Clamp(Math.Round(sum), 0, 255);
                }
        return new RasterImage(width, height, channels, output);
    }

    /// <summary>Per output index, the first source index it reads and the normalised triangle weights of the ones it covers.</summary>
    static (int[] From, double[][] Weights) TriangleWeights(int sourceLength, int targetLength)
    {
        double scale = (double)sourceLength / targetLength, support = Math.Max(scale, 1.0);
        var from = new int[targetLength];
        var weights = new double[targetLength][];
        for (int i = 0; i < targetLength; i++)
        {
            double centre = (i + 0.5) * scale;
            int first = Math.Max(0, (int)(centre - support + 0.5)), last = Math.Min(sourceLength, (int)(centre + support + 0.5));
            var w = new double[last - first];
            for (int j = first; j < last; j++) w[j - first] = Math.Max(0, 1 - Math.Abs((j + 0.5 - centre) / support));
            double total = w.Sum();
            for (int j = 0; j < w.Length; j++) w[j] /= total;
            (from[i], weights[i]) = (first, w);
        }
        return (from, weights);
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
