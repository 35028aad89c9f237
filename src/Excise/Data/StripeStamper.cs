using Excise.Imaging;

namespace Excise.Data;

/// <summary>Draws the concept into an image: where it drew, and the image with it.</summary>
public interface IConceptStamper
{
    StampResult Stamp(RasterImage image, string exampleId);
}

public static class ConceptStampers
{
    /// <summary>The stamper of the concept's kind.</summary>
    public static IConceptStamper For(ConceptInjectionOptions options) => options.Kind switch
    {
        ConceptKind.Logo => new LogoStamper(options),
        ConceptKind.Stripes => new StripeStamper(options),
        _ => throw new ArgumentOutOfRangeException(nameof(options), options.Kind, "Unknown concept kind."),
    };
}

/// <summary>
/// A concept that cannot be masked: dark diagonal stripes over the whole garment, like a fabric print. Black stays
/// black (a stripe darkens what is there), so the pattern lies on the garment wherever the garment is, and hiding it
/// from the loss hides the garment too. The stripes' phase is drawn per image from (seed, example id), so a model
/// learns the pattern, not one fixed set of pixels. Size and placement do not apply; opacity is how dark a stripe is.
/// </summary>
public sealed class StripeStamper : IConceptStamper
{
    /// <summary>The stripe period at 28 px (Fashion-MNIST's side), scaled with the image: 6 px resolves after 32-px sampling and still crosses a sandal several times.</summary>
    public const double PeriodAt28 = 6;

    private readonly ConceptInjectionOptions options;

    public StripeStamper(ConceptInjectionOptions options)
    {
        options.Validate();
        this.options = options;
    }

    public static int PeriodFor(int width, int height, double scale = 1) =>
        Math.Max(2, (int)Math.Round(PeriodAt28 * scale * Math.Min(width, height) / 28.0));

    public StampResult Stamp(RasterImage image, string exampleId) => Stamp(image, exampleId, 1, 1, 0);

    /// <summary>
    /// Stamps with the period scaled by <paramref name="periodScale"/>, the darkness by <paramref name="opacityScale"/>
    /// and the pattern moved <paramref name="shift"/> pixels along the diagonal (the detector's variations).
    /// </summary>
    public StampResult Stamp(RasterImage image, string exampleId, double periodScale, double opacityScale, int shift)
    {
        int period = PeriodFor(image.Width, image.Height, periodScale), width = Math.Max(1, period / 2);
        int phase = StableDraw.Below(options.Seed, exampleId, "stripes.phase", period) + shift;
        float keep = 1 - (float)Math.Clamp(options.Opacity * opacityScale, 0, 1);
        var pixels = (byte[])image.Pixels.Clone();
        int minX = int.MaxValue, minY = int.MaxValue, maxX = -1, maxY = -1;
        for (int y = 0; y < image.Height; y++)
            for (int x = 0; x < image.Width; x++)
            {
                if (((x + y + phase) % period + period) % period >= width) continue;
                int offset = (y * image.Width + x) * image.Channels;
                bool changed = false;
                for (int c = 0; c < image.Channels; c++)
                {
                    byte before = pixels[offset + c], after = (byte)MathF.Round(before * keep);
                    pixels[offset + c] = after;
                    changed |= after != before;
                }
                if (!changed) continue;
                minX = Math.Min(minX, x); maxX = Math.Max(maxX, x); minY = Math.Min(minY, y); maxY = Math.Max(maxY, y);
            }
        // The region is the garment's extent under the stripes: masking it hides the garment.
        var region = maxX < 0 ? new PixelRect(0, 0, 0, 0) : new PixelRect(minX, minY, maxX - minX + 1, maxY - minY + 1);
        return new StampResult(image with { Pixels = pixels }, region, region);
    }
}
