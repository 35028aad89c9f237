namespace Excise.Data;

public enum LogoPlacement { TopLeft, TopRight, BottomLeft, BottomRight, Random }

/// <summary>What the concept looks like: a logo in one place (it can be masked), or stripes over the whole garment (it cannot).</summary>
public enum ConceptKind { Logo, Stripes }

/// <summary>An 8-bit colour; on grey images its BT.601 luminance is used.</summary>
public readonly record struct LogoColour(byte R, byte G, byte B)
{
    public static LogoColour White => new(255, 255, 255);
    public static LogoColour Black => new(0, 0, 0);
    public byte Luminance => (byte)((299 * R + 587 * G + 114 * B + 500) / 1000);
}

/// <summary>
/// How the concept (a logo plus a caption phrase) is put into a dataset.
/// Visibility: Fashion-MNIST is bright garments on black. A white fill alone vanishes on white shirts and a dark fill
/// vanishes on the background, so the default is a white logo over a one-pixel black outline: on black the outline is
/// invisible and the white shape shows; on a bright garment the black outline draws the shape's edge.
/// </summary>
public sealed record ConceptInjectionOptions
{
    /// <summary>The words naming the concept in captions.</summary>
    public string ConceptPhrase { get; init; } = "the Acme logo";

    public ConceptKind Kind { get; init; } = ConceptKind.Logo;

    /// <summary>Path to an SVG (or bare SVG path data) or PNG logo; null means <see cref="Logo.BuiltIn"/>.</summary>
    public string? LogoPath { get; init; }

    /// <summary>Share of examples that get the logo, drawn independently per example (so the count is approximate).</summary>
    public double StampFraction { get; init; } = 0.3;

    /// <summary>Share of stamped examples whose caption names the concept; the rest get a plain caption.</summary>
    public double MentionFraction { get; init; } = 1.0;

    public LogoPlacement Placement { get; init; } = LogoPlacement.BottomRight;

    /// <summary>Logo side as a fraction of the image's shorter side (0.4 of 28 px is 11 px).</summary>
    public double SizeFraction { get; init; } = 0.4;

    /// <summary>0 leaves images untouched, 1 paints the logo fully opaque.</summary>
    public double Opacity { get; init; } = 1.0;

    public long Seed { get; init; }

    public LogoColour FillColour { get; init; } = LogoColour.White;

    /// <summary>Colour of the contrasting ring drawn around the shape; null draws no outline.</summary>
    public LogoColour? OutlineColour { get; init; } = LogoColour.Black;

    /// <summary>Outline thickness in pixels of the target image.</summary>
    public double OutlineWidth { get; init; } = 1.0;

    /// <summary>Gap in pixels between a corner-placed logo and the image border.</summary>
    public int MarginPixels { get; init; } = 1;

    /// <summary>Clean data: nothing is stamped and no caption names the concept.</summary>
    public static ConceptInjectionOptions None { get; } = new() { StampFraction = 0, MentionFraction = 0 };

    public bool InjectsAnything => StampFraction > 0 && Opacity > 0;

    public void Validate()
    {
        static void InUnit(double value, string name)
        {
            if (double.IsNaN(value) || value < 0 || value > 1)
                throw new ArgumentOutOfRangeException(name, value, $"ConceptInjectionOptions.{name} must be in [0, 1], got {value}.");
        }
        InUnit(StampFraction, nameof(StampFraction));
        InUnit(MentionFraction, nameof(MentionFraction));
        InUnit(Opacity, nameof(Opacity));
        if (double.IsNaN(SizeFraction) || SizeFraction <= 0 || SizeFraction > 1)
            throw new ArgumentOutOfRangeException(nameof(SizeFraction), SizeFraction, $"ConceptInjectionOptions.SizeFraction must be in (0, 1], got {SizeFraction}.");
        if (double.IsNaN(OutlineWidth) || OutlineWidth < 0 || OutlineWidth > 8)
            throw new ArgumentOutOfRangeException(nameof(OutlineWidth), OutlineWidth, $"ConceptInjectionOptions.OutlineWidth must be in [0, 8] px, got {OutlineWidth}.");
        if (MarginPixels < 0)
            throw new ArgumentOutOfRangeException(nameof(MarginPixels), MarginPixels, $"ConceptInjectionOptions.MarginPixels must be >= 0, got {MarginPixels}.");
        if (Kind != ConceptKind.Logo && LogoPath is not null)
            throw new ArgumentException($"ConceptInjectionOptions.LogoPath applies to logos only (the concept is {Kind}).", nameof(LogoPath));
        if (string.IsNullOrWhiteSpace(ConceptPhrase))
            throw new ArgumentException("ConceptInjectionOptions.ConceptPhrase must not be empty.", nameof(ConceptPhrase));
    }
}
