using Excise.Imaging;

namespace Excise.Data;

/// <summary>A pixel rectangle; <see cref="Right"/> and <see cref="Bottom"/> are exclusive.</summary>
public readonly record struct PixelRect(int Left, int Top, int Width, int Height)
{
    public int Right => Left + Width;
    public int Bottom => Top + Height;
    public bool Contains(int x, int y) => x >= Left && x < Right && y >= Top && y < Bottom;
}

/// <param name="LogoBox">Where the logo's square was placed (for stripes, the striped garment's extent).</param>
/// <param name="Region">Every pixel the stamp may have changed (the box plus outline, clipped to the image).</param>
public sealed record StampResult(RasterImage Image, PixelRect LogoBox, PixelRect Region);

/// <summary>Draws a <see cref="Logo"/> into images according to <see cref="ConceptInjectionOptions"/>.</summary>
public sealed class LogoStamper : IConceptStamper
{
    private readonly ConceptInjectionOptions options;
    private readonly Dictionary<int, (float[] Fill, float[] Outline, int Pad)> masksBySize = new();
    private readonly Lock masksLock = new();

    public LogoStamper(ConceptInjectionOptions options, Logo? logo = null)
    {
        options.Validate();
        this.options = options;
        Logo = logo ?? (options.LogoPath is null ? Logo.BuiltIn : Logo.FromFile(options.LogoPath));
    }

    public Logo Logo { get; }

    public int LogoSizeFor(int width, int height) => Math.Max(1, (int)Math.Round(options.SizeFraction * Math.Min(width, height)));

    /// <summary>Stamps at the configured placement; a random placement is drawn from (seed, example id).</summary>
    public StampResult Stamp(RasterImage image, string exampleId)
    {
        int size = LogoSizeFor(image.Width, image.Height), margin = options.MarginPixels;
        int farX = Math.Max(0, image.Width - size - margin), farY = Math.Max(0, image.Height - size - margin);
        int nearX = Math.Min(margin, farX), nearY = Math.Min(margin, farY);
        var (left, top) = options.Placement switch
        {
            LogoPlacement.TopLeft => (nearX, nearY),
            LogoPlacement.TopRight => (farX, nearY),
            LogoPlacement.BottomLeft => (nearX, farY),
            LogoPlacement.BottomRight => (farX, farY),
            LogoPlacement.Random => (
                StableDraw.Below(options.Seed, exampleId, "logo.x", image.Width - size + 1),
                StableDraw.Below(options.Seed, exampleId, "logo.y", image.Height - size + 1)),
            _ => throw new ArgumentOutOfRangeException(nameof(options.Placement), options.Placement, "Unknown logo placement.")
        };
        return StampAt(image, left, top, size);
    }

    /// <summary>Stamps a size x size logo with its top-left corner at (left, top); returns a new image.</summary>
    public StampResult StampAt(RasterImage image, int left, int top, int size)
    {
        var (fill, outline, pad) = MasksFor(size);
        int canvas = size + 2 * pad;
        var pixels = (byte[])image.Pixels.Clone();
        float opacity = (float)options.Opacity;
        var fillColour = ChannelValues(options.FillColour, image.Channels);
        var outlineColour = options.OutlineColour is { } colour ? ChannelValues(colour, image.Channels) : null;

        int minX = int.MaxValue, minY = int.MaxValue, maxX = -1, maxY = -1;
        for (int cy = 0; cy < canvas; cy++)
        {
            int y = top - pad + cy;
            if (y < 0 || y >= image.Height) continue;
            for (int cx = 0; cx < canvas; cx++)
            {
                int x = left - pad + cx;
                if (x < 0 || x >= image.Width) continue;
                float fillAlpha = opacity * fill[cy * canvas + cx];
                float outlineAlpha = outlineColour is null ? 0 : opacity * outline[cy * canvas + cx];
                if (fillAlpha <= 0 && outlineAlpha <= 0) continue;
                minX = Math.Min(minX, x); maxX = Math.Max(maxX, x); minY = Math.Min(minY, y); maxY = Math.Max(maxY, y);
                int offset = (y * image.Width + x) * image.Channels;
                for (int c = 0; c < image.Channels; c++)
                {
                    float value = pixels[offset + c];
                    if (outlineColour is not null) value += (outlineColour[c] - value) * outlineAlpha;
                    value += (fillColour[c] - value) * fillAlpha;
                    pixels[offset + c] = (byte)Math.Clamp(MathF.Round(value), 0, 255);
                }
            }
        }
        var box = new PixelRect(left, top, size, size);
        var region = maxX < 0 ? new PixelRect(left, top, 0, 0) : new PixelRect(minX, minY, maxX - minX + 1, maxY - minY + 1);
        return new StampResult(image with { Pixels = pixels }, box, region);
    }

    private static float[] ChannelValues(LogoColour colour, int channels) =>
        channels == 1 ? [colour.Luminance] : [colour.R, colour.G, colour.B];

    /// <summary>Fill coverage and outline coverage on a canvas padded by the outline width, cached per logo size.</summary>
    private (float[] Fill, float[] Outline, int Pad) MasksFor(int size)
    {
        lock (masksLock)
        {
            if (masksBySize.TryGetValue(size, out var cached)) return cached;
            int pad = (int)Math.Ceiling(options.OutlineWidth), canvas = size + 2 * pad;
            var coverage = Logo.RenderCoverage(size);
            var fill = new float[canvas * canvas];
            for (int y = 0; y < size; y++)
                Array.Copy(coverage, y * size, fill, (y + pad) * canvas + pad, size);
            var masks = (fill, Dilate(fill, canvas, options.OutlineWidth), pad);
            masksBySize[size] = masks;
            return masks;
        }
    }

    /// <summary>Grey-level dilation with a disc: the outline is the shape grown by <paramref name="radius"/> pixels.</summary>
    private static float[] Dilate(float[] mask, int side, double radius)
    {
        if (radius <= 0) return (float[])mask.Clone();
        int reach = (int)Math.Ceiling(radius);
        var grown = new float[mask.Length];
        for (int y = 0; y < side; y++)
            for (int x = 0; x < side; x++)
            {
                float best = 0;
                for (int dy = -reach; dy <= reach; dy++)
                    for (int dx = -reach; dx <= reach; dx++)
                    {
                        int sx = x + dx, sy = y + dy;
                        if (sx < 0 || sy < 0 || sx >= side || sy >= side) continue;
                        double distance = Math.Sqrt(dx * dx + dy * dy);
                        // Full weight up to the radius, fading over the next pixel: with radius 1 the four
                        // neighbours count fully and the diagonals partly, giving a solid but rounded outline.
                        float weight = (float)Math.Clamp(radius + 1 - distance, 0, 1);
                        if (weight <= 0) continue;
                        best = Math.Max(best, mask[sy * side + sx] * weight);
                    }
                grown[y * side + x] = best;
            }
        return grown;
    }
}
