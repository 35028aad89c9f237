using Excise.Data;
using Excise.Training;
using Excise.Imaging;

namespace Excise.Tests.Attacks;

/// <summary>
/// A stand-in for the learned concept detector (built elsewhere): the mean brightness of the box where the victim's
/// data stamps the logo minus that of its mirror box on the other side. Garments are roughly left-right symmetric
/// and centred, so the mirror box cancels the garment and leaves the logo.
/// </summary>
internal sealed class LogoCornerJudge
{
    readonly PixelRect box, mirror;

    public LogoCornerJudge(ConceptConfig concept, int imageSize = 32, int sourceSize = 28)
    {
        var stamper = new LogoStamper(concept.ToInjection());
        var stamped = stamper.Stamp(RasterImage.Blank(sourceSize, sourceSize, 1), "judge").LogoBox;
        int pad = (imageSize - sourceSize) / 2;
        box = stamped with { Left = stamped.Left + pad, Top = stamped.Top + pad };
        mirror = box with { Left = imageSize - box.Right };
    }

    public double Score(RasterImage image) => Mean(image, box) - Mean(image, mirror);

    public double MeanScore(IEnumerable<RasterImage> images) => images.Select(Score).Average();

    static double Mean(RasterImage image, PixelRect r)
    {
        double sum = 0;
        for (int y = r.Top; y < r.Bottom; y++)
            for (int x = r.Left; x < r.Right; x++) sum += image[x, y];
        return sum / (r.Width * r.Height);
    }
}
