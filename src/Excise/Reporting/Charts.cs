using System.Globalization;
using Excise.Experiment;
using SkiaSharp;

namespace Excise.Reporting;

/// <summary>
/// PNG charts of the experiment, drawn with SkiaSharp: the same inputs always give the same file. Text needs a font
/// (see <see cref="CanDrawText"/>); without one the chart is still written, with its marks but no labels.
/// </summary>
public static class Charts
{
    public const int Width = 900, Height = 450;

    /// <summary>False when no usable font was found on this machine: charts are then written without text.</summary>
    public static bool CanDrawText => ChartTypeface.CanDrawText;

    /// <summary>
    /// Bars per group (arms) and series (attacks), each with its 95% interval as an error bar when it has one.
    /// A null or NaN value leaves a gap.
    /// </summary>
    /// <param name="yMax">Fixes the axis at 0..yMax (rates: 1); null scales it to the data.</param>
    public static void GroupedBarChart(string title, IReadOnlyList<string> groups, IReadOnlyList<string> series,
        Func<int, int, Estimate?> value, string yLabel, double? yMax, string path)
    {
        var values = new Estimate?[groups.Count, series.Count];
        for (int g = 0; g < groups.Count; g++)
            for (int s = 0; s < series.Count; s++)
                values[g, s] = value(g, s) is { } e && double.IsFinite(e.Value) ? e : null;
        var present = values.Cast<Estimate?>().OfType<Estimate>().ToList();

        var scale = yMax is { } fixedMax ? AxisScale.Fixed(0, fixedMax) : AutoBarScale(present);
        using var chart = new ChartCanvas(title, null, series, scale, yLabel, bottomMargin: 50);
        if (groups.Count == 0 || series.Count == 0 || present.Count == 0) chart.DrawNote("no data");

        float groupWidth = groups.Count == 0 ? 0 : chart.Plot.Width / groups.Count;
        float barWidth = series.Count == 0 ? 0 : groupWidth * 0.8f / series.Count;
        for (int g = 0; g < groups.Count; g++)
        {
            float groupLeft = chart.Plot.Left + g * groupWidth;
            chart.DrawTextFitted(groups[g], groupLeft + groupWidth / 2, chart.Plot.Bottom + 20, groupWidth - 6, 13, SKColors.Black);
            for (int s = 0; s < series.Count; s++)
                if (values[g, s] is { } estimate)
                    DrawBar(chart, estimate, groupLeft + groupWidth * 0.1f + s * barWidth, barWidth, ChartPalette.Colour(s));
        }
        chart.Save(path);
    }

    /// <summary>
    /// One line per series over x = 1, 2, …, each drawn as a trailing moving average of <paramref name="smoothWindow"/>
    /// points so noisy per-step losses read as a trend. NaN points are skipped; a window with none leaves a gap.
    /// </summary>
    public static void LineChart(string title, IReadOnlyList<(string Name, IReadOnlyList<double> Y)> series,
        string xLabel, string yLabel, string path, int smoothWindow = 25)
    {
        if (smoothWindow < 1) throw new ArgumentOutOfRangeException(nameof(smoothWindow), smoothWindow, "The window must be ≥ 1.");
        var smoothed = series.Select(s => MovingAverage(s.Y, smoothWindow)).ToList();
        var finite = smoothed.SelectMany(y => y).Where(double.IsFinite).ToList();
        int points = series.Count == 0 ? 0 : series.Max(s => s.Y.Count);

        var scale = finite.Count == 0 ? AxisScale.Fixed(0, 1) : AxisScale.Nice(finite.Min(), finite.Max());
        string? subtitle = smoothWindow > 1 ? $"moving average over {smoothWindow.ToString(CultureInfo.InvariantCulture)} steps" : null;
        using var chart = new ChartCanvas(title, subtitle, series.Select(s => s.Name).ToList(), scale, yLabel, bottomMargin: 56);
        chart.DrawXLabel(xLabel);
        if (finite.Count == 0) { chart.DrawNote("no data"); chart.Save(path); return; }

        var x = AxisScale.Nice(1, Math.Max(points, 2), targetTicks: 8);
        float XPixel(double step) => (float)(chart.Plot.Left + Math.Clamp(x.Fraction(step), 0, 1) * chart.Plot.Width);
        foreach (double tick in x.Ticks())
            chart.DrawXTick(XPixel(tick), x.Label(tick));

        chart.Canvas.Save();
        chart.Canvas.ClipRect(chart.Plot);
        for (int s = 0; s < smoothed.Count; s++)
        {
            using var line = new SKPaint
            {
                Color = ChartPalette.Colour(s), Style = SKPaintStyle.Stroke, StrokeWidth = 2, IsAntialias = true,
                StrokeJoin = SKStrokeJoin.Round,
            };
            using var trend = Polyline(smoothed[s], i => XPixel(i + 1), chart.YPixel);
            chart.Canvas.DrawPath(trend, line);
            DrawIsolatedPoints(chart, smoothed[s], i => XPixel(i + 1), ChartPalette.Colour(s));
        }
        chart.Canvas.Restore();
        chart.Save(path);
    }

    /// <summary>
    /// Trailing mean over the last <paramref name="window"/> points (fewer at the start), ignoring NaN; NaN where the
    /// window holds no finite value.
    /// </summary>
    public static IReadOnlyList<double> MovingAverage(IReadOnlyList<double> values, int window)
    {
        if (window < 1) throw new ArgumentOutOfRangeException(nameof(window), window, "The window must be ≥ 1.");
        var result = new double[values.Count];
        double sum = 0;
        int count = 0;
        for (int i = 0; i < values.Count; i++)
        {
            if (double.IsFinite(values[i])) { sum += values[i]; count++; }
            if (i >= window && double.IsFinite(values[i - window])) { sum -= values[i - window]; count--; }
            result[i] = count == 0 ? double.NaN : sum / count;
        }
        return result;
    }

    static AxisScale AutoBarScale(IReadOnlyList<Estimate> estimates)
    {
        var tops = estimates.Select(e => e.HasInterval && double.IsFinite(e.Upper) ? Math.Max(e.Value, e.Upper) : e.Value);
        var bottoms = estimates.Select(e => e.HasInterval && double.IsFinite(e.Lower) ? Math.Min(e.Value, e.Lower) : e.Value);
        double max = tops.DefaultIfEmpty(1).Max(), min = Math.Min(0, bottoms.DefaultIfEmpty(0).Min());
        return AxisScale.Nice(min, max > min ? max : min + 1);
    }

    static void DrawBar(ChartCanvas chart, Estimate estimate, float left, float width, SKColor colour)
    {
        float inset = width * 0.08f, zero = chart.YPixel(0), top = chart.YPixel(estimate.Value);
        // A measured zero still gets a sliver, so it cannot be mistaken for a missing value (a gap).
        if (Math.Abs(zero - top) < 2) top = zero - 2;
        using var fill = new SKPaint { Color = colour, IsAntialias = true };
        chart.Canvas.DrawRect(SKRect.Create(left + inset, Math.Min(zero, top), width - 2 * inset, Math.Abs(zero - top)), fill);
        if (!estimate.HasInterval || !double.IsFinite(estimate.Lower) || !double.IsFinite(estimate.Upper)) return;

        using var whisker = new SKPaint { Color = new SKColor(0x33, 0x33, 0x33), StrokeWidth = 1.5f, IsAntialias = true };
        float centre = left + width / 2, cap = Math.Min(6, width / 4), low = chart.YPixel(estimate.Lower), high = chart.YPixel(estimate.Upper);
        chart.Canvas.DrawLine(centre, low, centre, high, whisker);
        chart.Canvas.DrawLine(centre - cap, low, centre + cap, low, whisker);
        chart.Canvas.DrawLine(centre - cap, high, centre + cap, high, whisker);
    }

    /// <summary>A point with no finite neighbour draws no line segment, so it is marked with a dot.</summary>
    static void DrawIsolatedPoints(ChartCanvas chart, IReadOnlyList<double> y, Func<int, float> xPixel, SKColor colour)
    {
        using var dot = new SKPaint { Color = colour, IsAntialias = true };
        for (int i = 0; i < y.Count; i++)
        {
            bool isolated = double.IsFinite(y[i]) && (i == 0 || !double.IsFinite(y[i - 1])) && (i == y.Count - 1 || !double.IsFinite(y[i + 1]));
            if (isolated) chart.Canvas.DrawCircle(xPixel(i), chart.YPixel(y[i]), 3, dot);
        }
    }

    /// <summary>A path through the finite points, lifting the pen over NaN.</summary>
    static SKPath Polyline(IReadOnlyList<double> y, Func<int, float> xPixel, Func<double, float> yPixel)
    {
        using var path = new SKPathBuilder();
        bool penDown = false;
        for (int i = 0; i < y.Count; i++)
        {
            if (!double.IsFinite(y[i])) { penDown = false; continue; }
            var point = new SKPoint(xPixel(i), yPixel(y[i]));
            if (penDown) path.LineTo(point); else path.MoveTo(point);
            penDown = true;
        }
        return path.Detach();
    }
}
