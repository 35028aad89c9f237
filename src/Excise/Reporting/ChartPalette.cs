using SkiaSharp;

namespace Excise.Reporting;

/// <summary>
/// Okabe–Ito colours, which stay distinguishable under the common colour-vision deficiencies. Yellow comes last: it is
/// hard to see on white.
/// </summary>
public static class ChartPalette
{
    static readonly uint[] Rgb = [0x0072B2, 0xD55E00, 0x009E73, 0xE69F00, 0x56B4E9, 0xCC79A7, 0x000000, 0xF0E442];

    public static int Count => Rgb.Length;

    /// <summary>The colour of the series at <paramref name="index"/>; the palette repeats after <see cref="Count"/>.</summary>
    public static SKColor Colour(int index)
    {
        uint rgb = Rgb[index % Rgb.Length];
        return new SKColor((byte)(rgb >> 16), (byte)(rgb >> 8), (byte)rgb);
    }

    /// <summary>The same colour as CSS ("#0072b2"), for legends drawn beside a chart in HTML.</summary>
    public static string Css(int index) => $"#{Rgb[index % Rgb.Length]:x6}";
}
