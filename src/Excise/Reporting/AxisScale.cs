using System.Globalization;

namespace Excise.Reporting;

/// <summary>A linear axis from <see cref="Min"/> to <see cref="Max"/> with round tick values (1, 2 or 5 × 10ⁿ apart).</summary>
internal sealed record AxisScale(double Min, double Max, double Step)
{
    /// <summary>Widens [min, max] outward to whole ticks, aiming at about <paramref name="targetTicks"/> intervals.</summary>
    public static AxisScale Nice(double min, double max, int targetTicks = 5)
    {
        if (!double.IsFinite(min) || !double.IsFinite(max)) (min, max) = (0, 1);
        if (max < min) (min, max) = (max, min);
        if (max - min < 1e-12)
        {
            // A flat series still needs a visible range around its value.
            double pad = Math.Abs(min) > 1e-12 ? Math.Abs(min) * 0.1 : 0.5;
            (min, max) = (min - pad, max + pad);
        }
        double step = NiceStep((max - min) / targetTicks);
        return new AxisScale(Math.Floor(min / step + 1e-9) * step, Math.Ceiling(max / step - 1e-9) * step, step);
    }

    /// <summary>A fixed range (rates: 0..1) with round ticks inside it.</summary>
    public static AxisScale Fixed(double min, double max, int targetTicks = 5) => new(min, max, NiceStep((max - min) / targetTicks));

    public IEnumerable<double> Ticks()
    {
        int count = (int)Math.Floor((Max - Min) / Step + 1e-9);
        for (int i = 0; i <= count; i++) yield return Min + i * Step;
    }

    /// <summary>Position of <paramref name="value"/> along the axis, 0 at <see cref="Min"/> and 1 at <see cref="Max"/>.</summary>
    public double Fraction(double value) => (value - Min) / (Max - Min);

    public string Label(double tick)
    {
        int decimals = Math.Max(0, (int)Math.Ceiling(-Math.Log10(Step) - 1e-9));
        if (Math.Abs(tick) < Step * 1e-9) tick = 0; // no "-0.0"
        return tick.ToString("F" + decimals, CultureInfo.InvariantCulture);
    }

    static double NiceStep(double rough)
    {
        if (!(rough > 0) || !double.IsFinite(rough)) return 1;
        double magnitude = Math.Pow(10, Math.Floor(Math.Log10(rough)));
        double scaled = rough / magnitude;
        double nice = scaled <= 1 ? 1 : scaled <= 2 ? 2 : scaled <= 5 ? 5 : 10;
        return nice * magnitude;
    }
}
