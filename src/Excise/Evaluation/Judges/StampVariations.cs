using Excise.Data;
using Excise.Imaging;

namespace Excise.Evaluation.Judges;

/// <summary>
/// Stamps the concept with the run's settings or a variation of them (smaller, fainter, displaced). Logo stampers are
/// cached per (pixel size, opacity) because each renders and caches its own masks. Stripes vary the same way: a finer
/// period, a fainter stripe, the pattern moved along the diagonal.
/// </summary>
internal sealed class StampVariations
{
    private readonly ConceptInjectionOptions options;
    private readonly LogoStamper? exact;
    private readonly StripeStamper? stripes;
    private readonly Dictionary<(int Side, int Size, int OpacityPercent), LogoStamper> variants = new();

    public StampVariations(ConceptInjectionOptions options)
    {
        options.Validate();
        this.options = options;
        if (options.Kind == ConceptKind.Stripes) stripes = new StripeStamper(options);
        else exact = new LogoStamper(options);
    }

    /// <summary>
    /// Stamps as the run would, then scales size and opacity and moves the concept by (dx, dy) from where the run puts it.
    /// </summary>
    public StampResult Stamp(RasterImage image, string exampleId, double sizeScale = 1, double opacityScale = 1, int dx = 0, int dy = 0)
    {
        if (stripes is not null) return stripes.Stamp(image, exampleId, sizeScale, opacityScale, dx + dy);
        var stamper = sizeScale == 1 && opacityScale == 1 ? exact! : Variant(image, sizeScale, opacityScale);
        var placed = stamper.Stamp(image, exampleId);
        return dx == 0 && dy == 0 ? placed : stamper.StampAt(image, placed.LogoBox.Left + dx, placed.LogoBox.Top + dy, placed.LogoBox.Width);
    }

    private LogoStamper Variant(RasterImage image, double sizeScale, double opacityScale)
    {
        int side = Math.Min(image.Width, image.Height);
        int size = Math.Max(1, (int)Math.Round(exact!.LogoSizeFor(image.Width, image.Height) * sizeScale));
        int opacityPercent = (int)Math.Round(options.Opacity * opacityScale * 100);
        var key = (side, size, opacityPercent);
        if (!variants.TryGetValue(key, out var stamper))
        {
            // A size fraction of exactly size/side makes the stamper's rounding land on the wanted pixel size.
            stamper = new LogoStamper(options with { SizeFraction = Math.Min(1.0, (size + 0.25) / side), Opacity = opacityPercent / 100.0 }, exact.Logo);
            variants[key] = stamper;
        }
        return stamper;
    }
}
