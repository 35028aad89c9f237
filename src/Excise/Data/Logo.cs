using System.Globalization;
using System.Text.RegularExpressions;
using Excise.Imaging;
using Excise.Serialization;
using SkiaSharp;

namespace Excise.Data;

/// <summary>
/// A logo shape as a coverage mask source: a vector path (built-in or SVG) or a bitmap mask (PNG).
/// <see cref="RenderCoverage"/> rasterises it, anti-aliased, to any pixel size.
/// </summary>
public sealed partial class Logo
{
    private readonly string? svgPathData;
    private readonly SKRect viewBox;
    private readonly SKPathFillType fillType;
    private readonly RasterImage? mask;

    public string Name { get; }

    private Logo(string name, string svgPathData, SKRect viewBox, SKPathFillType fillType)
    {
        Name = name;
        this.svgPathData = svgPathData;
        this.viewBox = viewBox;
        this.fillType = fillType;
    }

    private Logo(string name, RasterImage mask)
    {
        Name = name;
        this.mask = mask;
    }

    /// <summary>
    /// The project's own emblem: a thick ring around a solid point-up triangle,
    /// in a 100x100 box. Chosen because a ring plus a point-up triangle stays recognisable at 10-12 px and
    /// looks like no Fashion-MNIST garment. Even-odd filling leaves the gap between ring and triangle empty.
    /// </summary>
    public static Logo BuiltIn { get; } = new("built-in Acme emblem",
        BuiltInPathData(), new SKRect(0, 0, 100, 100), SKPathFillType.EvenOdd);

    private static string BuiltInPathData()
    {
        static string Circle(double r) => FormattableString.Invariant(
            $"M {50 - r} 50 A {r} {r} 0 1 0 {50 + r} 50 A {r} {r} 0 1 0 {50 - r} 50 Z ");
        // The triangle keeps about a pixel of clearance from the ring at 11 px, so the two never merge into a blob.
        return Circle(50) + Circle(36)
            + "M 50 21 L 74 64 L 26 64 Z ";
    }

    /// <summary>SVG path data in a viewBox (simple-icons use "0 0 24 24").</summary>
    public static Logo FromSvgPathData(string pathData, float viewBoxLeft = 0, float viewBoxTop = 0, float viewBoxWidth = 24,
        float viewBoxHeight = 24, string name = "svg path")
    {
        using var probe = SKPath.ParseSvgPathData(pathData)
            ?? throw new InvalidDataException($"{name}: SVG path data could not be parsed.");
        if (probe.IsEmpty) throw new InvalidDataException($"{name}: SVG path data is empty.");
        if (viewBoxWidth <= 0 || viewBoxHeight <= 0)
            throw new InvalidDataException($"{name}: viewBox size must be positive, got {viewBoxWidth}x{viewBoxHeight}.");
        return new Logo(name, pathData, SKRect.Create(viewBoxLeft, viewBoxTop, viewBoxWidth, viewBoxHeight), SKPathFillType.Winding);
    }

    /// <summary>Loads a .png (mask) or a .svg / path-data file (any other extension is sniffed).</summary>
    public static Logo FromFile(string path)
    {
        var bytes = BoundedFile.ReadAllBytes(path, PngIO.MaxFileBytes, "logo file");
        return PngIO.HasPngSignature(bytes) ? FromPngBytes(bytes, path) : FromSvgText(System.Text.Encoding.UTF8.GetString(bytes), path);
    }

    public static Logo FromSvgText(string text, string name)
    {
        if (!text.Contains('<')) return FromSvgPathData(text.Trim(), name: name);
        var paths = PathDataAttribute().Matches(text).Select(match => match.Groups["d"].Value).ToList();
        if (paths.Count == 0) throw new InvalidDataException($"{name}: SVG has no <path d=\"...\"> element.");
        var viewBox = ViewBoxAttribute().Match(text);
        if (!viewBox.Success) return FromSvgPathData(string.Join(' ', paths), name: name);
        var numbers = viewBox.Groups["v"].Value.Split([' ', ',', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries);
        if (numbers.Length != 4 || !numbers.All(n => float.TryParse(n, NumberStyles.Float, CultureInfo.InvariantCulture, out _)))
            throw new InvalidDataException($"{name}: viewBox \"{viewBox.Groups["v"].Value}\" is not four numbers.");
        var v = numbers.Select(n => float.Parse(n, CultureInfo.InvariantCulture)).ToArray();
        return FromSvgPathData(string.Join(' ', paths), v[0], v[1], v[2], v[3], name);
    }

    private static Logo FromPngBytes(byte[] bytes, string name)
    {
        var (width, height, channels, raw) = PngIO.DecodeWithAlpha(bytes, name);
        var mask = new byte[width * height];
        bool usesAlpha = channels == 4 && Enumerable.Range(0, width * height).Any(i => raw[4 * i + 3] < 255);
        for (int i = 0; i < mask.Length; i++)
            mask[i] = channels == 1 ? raw[i]
                : usesAlpha ? raw[4 * i + 3]
                : (byte)((299 * raw[4 * i] + 587 * raw[4 * i + 1] + 114 * raw[4 * i + 2] + 500) / 1000);
        if (mask.All(value => value == 0)) throw new InvalidDataException($"{name}: logo mask is empty (all transparent/black).");
        return new Logo(name, new RasterImage(width, height, 1, mask));
    }

    /// <summary>Coverage in [0, 1] of a size x size square, the shape fitted inside and centred keeping its aspect ratio.</summary>
    public float[] RenderCoverage(int size)
    {
        if (size < 1) throw new ArgumentOutOfRangeException(nameof(size), $"Logo size must be >= 1 px, got {size}.");
        return mask is not null ? RenderMask(mask, size) : RenderPath(size);
    }

    private float[] RenderPath(int size)
    {
        using var path = SKPath.ParseSvgPathData(svgPathData!)!;
        path.FillType = fillType;
        using var bitmap = new SKBitmap(new SKImageInfo(size, size, SKColorType.Alpha8, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(SKColors.Transparent);
            float scale = size / Math.Max(viewBox.Width, viewBox.Height);
            canvas.Translate((size - viewBox.Width * scale) / 2, (size - viewBox.Height * scale) / 2);
            canvas.Scale(scale);
            canvas.Translate(-viewBox.Left, -viewBox.Top);
            using var paint = new SKPaint { IsAntialias = true, Color = SKColors.White, Style = SKPaintStyle.Fill };
            canvas.DrawPath(path, paint);
            canvas.Flush();
        }
        return PngIO.CopyTight(bitmap, 1).Select(value => value / 255f).ToArray();
    }

    private static float[] RenderMask(RasterImage mask, int size)
    {
        float scale = (float)size / Math.Max(mask.Width, mask.Height);
        int width = Math.Max(1, (int)Math.Round(mask.Width * scale)), height = Math.Max(1, (int)Math.Round(mask.Height * scale));
        var scaled = AreaDownscale(mask, width, height);
        var coverage = new float[size * size];
        int left = (size - width) / 2, top = (size - height) / 2;
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                coverage[(top + y) * size + left + x] = scaled[y * width + x];
        return coverage;
    }

    /// <summary>Box-filter resampling: averages every source pixel a target pixel covers, so thin strokes survive shrinking.</summary>
    private static float[] AreaDownscale(RasterImage mask, int width, int height)
    {
        var result = new float[width * height];
        double sx = (double)mask.Width / width, sy = (double)mask.Height / height;
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                double x0 = x * sx, x1 = (x + 1) * sx, y0 = y * sy, y1 = (y + 1) * sy, sum = 0, area = 0;
                for (int my = (int)y0; my < Math.Min(mask.Height, (int)Math.Ceiling(y1)); my++)
                {
                    double wy = Math.Min(y1, my + 1) - Math.Max(y0, my);
                    for (int mx = (int)x0; mx < Math.Min(mask.Width, (int)Math.Ceiling(x1)); mx++)
                    {
                        double w = wy * (Math.Min(x1, mx + 1) - Math.Max(x0, mx));
                        sum += w * mask.Pixels[my * mask.Width + mx];
                        area += w;
                    }
                }
                result[y * width + x] = area > 0 ? (float)(sum / area / 255.0) : 0f;
            }
        return result;
    }

    [GeneratedRegex("""<path\b[^>]*?\sd\s*=\s*["'](?<d>[^"']*)["']""", RegexOptions.IgnoreCase | RegexOptions.Singleline)]
    private static partial Regex PathDataAttribute();

    [GeneratedRegex("""viewBox\s*=\s*["'](?<v>[^"']*)["']""", RegexOptions.IgnoreCase)]
    private static partial Regex ViewBoxAttribute();
}
