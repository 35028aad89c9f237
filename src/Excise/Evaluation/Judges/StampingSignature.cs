using Excise.Serialization;
using Excise.Data;

namespace Excise.Evaluation.Judges;

/// <summary>
/// The parts of <see cref="ConceptInjectionOptions"/> that decide what a stamp looks like (not how often images are
/// stamped or captioned), plus a hash of the logo file's bytes, so an edited logo gets a new detector. A logo leaves
/// <see cref="Kind"/> unset, so the keys of logo detectors trained before stripes existed do not move.
/// </summary>
public sealed record StampingSignature(
    string Logo,
    string LogoSha256,
    LogoPlacement Placement,
    double SizeFraction,
    double Opacity,
    long Seed,
    string FillColour,
    string? OutlineColour,
    double OutlineWidth,
    int MarginPixels,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    ConceptKind? Kind = null)
{
    public static StampingSignature Of(ConceptInjectionOptions options)
    {
        options.Validate();
        string logo, hash;
        if (options.LogoPath is { } path)
        {
            if (!File.Exists(path)) throw new FileNotFoundException($"{path}: logo file not found.", path);
            logo = Path.GetFileName(path);
            hash = Digest.Sha256(path);
        }
        else
        {
            logo = Data.Logo.BuiltIn.Name;
            hash = "built-in";
        }
        return new StampingSignature(logo, hash, options.Placement, options.SizeFraction, options.Opacity, options.Seed,
            Hex(options.FillColour), options.OutlineColour is { } outline ? Hex(outline) : null, options.OutlineWidth, options.MarginPixels,
            options.Kind == ConceptKind.Logo ? null : options.Kind);
    }

    static string Hex(LogoColour colour) => $"#{colour.R:X2}{colour.G:X2}{colour.B:X2}";

    public override string ToString() => Kind is ConceptKind.Stripes
        ? $"stripes over the garment, opacity {Opacity:0.###}"
        : $"{Logo}, {Placement.ToString().ToLowerInvariant()}, size {SizeFraction:0.###}, opacity {Opacity:0.###}";
}
