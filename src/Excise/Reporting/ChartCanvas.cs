using Excise.Serialization;
using SkiaSharp;

namespace Excise.Reporting;

/// <summary>
/// The frame every chart shares: white page, title, a plot area with a y axis and grid, a legend on the right, and
/// PNG output. Charts draw their marks inside <see cref="Plot"/>.
/// </summary>
internal sealed class ChartCanvas : IDisposable
{
    const float TitleSize = 18, SubtitleSize = 12, LabelSize = 13, TickSize = 12, LegendSize = 13;
    const float Swatch = 14, LegendGap = 8;

    readonly SKBitmap bitmap;
    readonly IReadOnlyList<string> legend;

    public SKCanvas Canvas { get; }
    public SKRect Plot { get; }
    public AxisScale Y { get; }

    /// <param name="legend">Series names, drawn in <see cref="ChartPalette"/> order.</param>
    public ChartCanvas(string title, string? subtitle, IReadOnlyList<string> legend, AxisScale y, string yLabel, float bottomMargin)
    {
        this.legend = legend;
        Y = y;
        bitmap = new SKBitmap(new SKImageInfo(Charts.Width, Charts.Height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        Canvas = new SKCanvas(bitmap);
        Canvas.Clear(SKColors.White);

        float legendWidth = legend.Count == 0 ? 0
            : Math.Clamp(legend.Max(name => MeasureText(name, LegendSize)) + Swatch + 3 * LegendGap, 110, 240);
        float top = subtitle is null ? 48 : 64;
        Plot = new SKRect(78, top, Charts.Width - legendWidth - 20, Charts.Height - bottomMargin);

        DrawText(title, Charts.Width / 2f, 28, TitleSize, SKColors.Black, SKTextAlign.Center, bold: true);
        if (subtitle is not null) DrawText(subtitle, Charts.Width / 2f, 48, SubtitleSize, SKColors.DimGray, SKTextAlign.Center);
        DrawYAxis(yLabel);
        DrawLegend();
    }

    /// <summary>Pixel row of a y value (clamped to the plot area).</summary>
    public float YPixel(double value)
    {
        double fraction = Math.Clamp(Y.Fraction(value), 0, 1);
        return (float)(Plot.Bottom - fraction * Plot.Height);
    }

    public static float MeasureText(string text, float size)
    {
        using var font = Font(size, bold: false);
        return font.MeasureText(text);
    }

    public void DrawText(string text, float x, float y, float size, SKColor colour, SKTextAlign align = SKTextAlign.Left,
        bool bold = false)
    {
        using var font = Font(size, bold);
        using var paint = new SKPaint { Color = colour, IsAntialias = true };
        Canvas.DrawText(text, x, y, align, font, paint);
    }

    /// <summary>Centred text shrunk (down to 9 px) and then shortened with "…" until it fits <paramref name="maxWidth"/>.</summary>
    public void DrawTextFitted(string text, float centreX, float y, float maxWidth, float size, SKColor colour)
    {
        while (size > 9 && MeasureText(text, size) > maxWidth) size -= 0.5f;
        string shown = text;
        while (shown.Length > 1 && MeasureText(shown, size) > maxWidth) shown = shown[..^2] + "…";
        DrawText(shown, centreX, y, size, colour, SKTextAlign.Center);
    }

    /// <summary>Title-sized label centred under the plot area.</summary>
    public void DrawXLabel(string label) =>
        DrawText(label, Plot.MidX, Charts.Height - 14, LabelSize, SKColors.Black, SKTextAlign.Center);

    public void DrawXTick(float x, string label)
    {
        using var paint = new SKPaint { Color = SKColors.Black, StrokeWidth = 1 };
        Canvas.DrawLine(x, Plot.Bottom, x, Plot.Bottom + 5, paint);
        DrawText(label, x, Plot.Bottom + 20, TickSize, SKColors.Black, SKTextAlign.Center);
    }

    /// <summary>A grey note in the middle of the plot (e.g. "no data").</summary>
    public void DrawNote(string note) => DrawText(note, Plot.MidX, Plot.MidY, LabelSize, SKColors.Gray, SKTextAlign.Center);

    public void Save(string path)
    {
        Canvas.Flush();
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100)
            ?? throw new InvalidOperationException($"SkiaSharp could not encode the chart {path} as PNG.");
        AtomicFile.Write(path, stream => data.SaveTo(stream));
    }

    public void Dispose()
    {
        Canvas.Dispose();
        bitmap.Dispose();
    }

    void DrawYAxis(string yLabel)
    {
        using var grid = new SKPaint { Color = new SKColor(0xE0, 0xE0, 0xE0), StrokeWidth = 1 };
        using var axis = new SKPaint { Color = SKColors.Black, StrokeWidth = 1 };
        foreach (double tick in Y.Ticks())
        {
            float y = YPixel(tick);
            Canvas.DrawLine(Plot.Left, y, Plot.Right, y, grid);
            Canvas.DrawLine(Plot.Left - 5, y, Plot.Left, y, axis);
            DrawText(Y.Label(tick), Plot.Left - 8, y + TickSize / 3, TickSize, SKColors.Black, SKTextAlign.Right);
        }
        Canvas.DrawLine(Plot.Left, Plot.Top, Plot.Left, Plot.Bottom, axis);
        Canvas.DrawLine(Plot.Left, Plot.Bottom, Plot.Right, Plot.Bottom, axis);

        Canvas.Save();
        Canvas.Translate(20, Plot.MidY);
        Canvas.RotateDegrees(-90);
        DrawText(yLabel, 0, 0, LabelSize, SKColors.Black, SKTextAlign.Center);
        Canvas.Restore();
    }

    void DrawLegend()
    {
        float left = Plot.Right + 20 + LegendGap, y = Plot.Top + 4;
        for (int i = 0; i < legend.Count; i++, y += 22)
        {
            using var fill = new SKPaint { Color = ChartPalette.Colour(i), IsAntialias = true };
            Canvas.DrawRect(left, y, Swatch, Swatch, fill);
            DrawText(legend[i], left + Swatch + LegendGap, y + Swatch - 2, LegendSize, SKColors.Black);
        }
    }

    static SKFont Font(float size, bool bold) => new(ChartTypeface.Current, size) { Embolden = bold, Subpixel = true };
}
