using Excise.Imaging;

namespace Excise.Data;

/// <summary>
/// Concept masks (<see cref="TrainingExample.ConceptMask"/>): 1-channel images, 255 on the concept's pixels, 0 elsewhere.
/// The convention is "where the concept is", not "where to learn", so padding an image with black leaves its border
/// outside the concept, as it is.
/// </summary>
public static class ConceptMasks
{
    public const byte Concept = 255;

    /// <summary>A mask covering one rectangle (clipped to the image).</summary>
    public static RasterImage FromRegion(int width, int height, PixelRect region)
    {
        var mask = RasterImage.Blank(width, height, 1);
        for (int y = Math.Max(0, region.Top); y < Math.Min(height, region.Bottom); y++)
            for (int x = Math.Max(0, region.Left); x < Math.Min(width, region.Right); x++)
                mask.Pixels[y * width + x] = Concept;
        return mask;
    }

    /// <summary>Both masks' concept pixels; either may be null.</summary>
    public static RasterImage? Union(RasterImage? a, RasterImage? b)
    {
        if (a is null || b is null) return a ?? b;
        RequireSameSize(a, b);
        return a with { Pixels = a.Pixels.Zip(b.Pixels, (p, q) => Math.Max(p, q)).ToArray() };
    }

    /// <summary>
    /// Fitted to a model's square input the way its image is (<paramref name="fit"/>), then made binary: any pixel the
    /// concept touches after resampling counts as the concept's, so a resize never shrinks what the loss ignores.
    /// </summary>
    public static bool[] Fit(RasterImage mask, Func<RasterImage, RasterImage> fit)
    {
        var fitted = fit(mask);
        if (fitted.Channels != 1) throw new ArgumentException("a concept mask must fit to one channel.");
        return fitted.Pixels.Select(p => p > 0).ToArray();
    }

    /// <summary>The mask of an image fitted to <paramref name="size"/> squared, as a mask image (binary, as <see cref="Fit"/> makes it).</summary>
    public static RasterImage FitTo(RasterImage mask, int size) =>
        new(size, size, 1, Fit(mask, m => m.FitTo(size, 1)).Select(inside => inside ? Concept : (byte)0).ToArray());

    /// <summary>Grows the concept's pixels by <paramref name="margin"/> in every direction (a square neighbourhood).</summary>
    public static bool[] Dilate(bool[] concept, int width, int height, int margin)
    {
        if (margin < 0) throw new ArgumentOutOfRangeException(nameof(margin), margin, "The margin must be ≥ 0 pixels.");
        if (margin == 0) return (bool[])concept.Clone();
        var grown = new bool[concept.Length];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                if (!concept[y * width + x]) continue;
                for (int yy = Math.Max(0, y - margin); yy <= Math.Min(height - 1, y + margin); yy++)
                    for (int xx = Math.Max(0, x - margin); xx <= Math.Min(width - 1, x + margin); xx++)
                        grown[yy * width + xx] = true;
            }
        return grown;
    }

    /// <summary>A user's mask image in kohya-ss sd-scripts' convention (white: learn, black: ignore) as a concept mask.</summary>
    public static RasterImage FromLearnMask(RasterImage learn)
    {
        var grey = learn.Channels == 1 ? learn : learn.ToChannels(1);
        return grey with { Pixels = grey.Pixels.Select(p => p < 128 ? Concept : (byte)0).ToArray() };
    }

    /// <summary>A concept mask in the users' convention (white: learn, black: the concept), as mask files are written.</summary>
    public static RasterImage ToLearnMask(RasterImage concept) =>
        concept with { Pixels = concept.Pixels.Select(p => p > 0 ? (byte)0 : (byte)255).ToArray() };

    static void RequireSameSize(RasterImage a, RasterImage b)
    {
        if (a.Width != b.Width || a.Height != b.Height || a.Channels != 1 || b.Channels != 1)
            throw new ArgumentException($"concept masks differ in size ({a.Width}x{a.Height}x{a.Channels} vs {b.Width}x{b.Height}x{b.Channels}).");
    }
}
