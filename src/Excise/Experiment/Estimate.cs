using System.Globalization;
using Excise.Evaluation.Metrics;

namespace Excise.Experiment;

/// <summary>
/// One figure of the experiment with its 95% interval and where the interval comes from, so a reader can tell a
/// Wilson interval over images from a t interval over seeds from a bare point estimate.
/// </summary>
/// <param name="N">Images behind a Wilson interval; seeds behind a t interval or a point.</param>
public sealed record Estimate(double Value, double Lower, double Upper, int N, string Method)
{
    public const string WilsonMethod = "wilson";
    public const string SeedsMethod = "t-across-seeds";
    public const string PointMethod = "point";
    public const string NewcombeMethod = "newcombe";

    public bool HasInterval => Method != PointMethod;

    public static Estimate FromProportion(ProportionEstimate p) => new(p.Rate, p.Lower, p.Upper, p.Trials, WilsonMethod);

    /// <summary>
    /// Shares measured per seed: one seed gives its Wilson interval over images; several give the mean across seeds
    /// with a t interval (seed-to-seed variation is the larger uncertainty once there is more than one), widened where
    /// needed to cover the Wilson interval of all images pooled. With three seeds the t interval rests on a variance
    /// from two degrees of freedom: seeds that happen to agree (three times 1 of 80) would give it zero width, while
    /// the images alone leave that much uncertainty. Clamped to [0, 1].
    /// </summary>
    public static Estimate OfProportions(IReadOnlyList<ProportionEstimate> perSeed)
    {
        if (perSeed.Count == 0) throw new ArgumentException("No measurements to summarise.");
        if (perSeed.Count == 1) return FromProportion(perSeed[0]);
        var t = OfValues(perSeed.Select(p => p.Rate).ToList());
        var pooled = ProportionEstimate.Pooled(perSeed);
        return t with { Lower = Math.Max(0, Math.Min(t.Lower, pooled.Lower)), Upper = Math.Min(1, Math.Max(t.Upper, pooled.Upper)) };
    }

    /// <summary>
    /// The difference of two shares (a − b) measured at the same seeds, e.g. an arm's rate minus standard's, or inversion
    /// minus its 0-step control. One seed: Newcombe's hybrid score interval (built from the two Wilson intervals, so it
    /// stays honest near 0 and 1 where a normal interval collapses). Several seeds: the mean of the per-seed differences
    /// with a t interval (a seed moves both shares together, so its effect cancels), widened where needed to cover the
    /// Newcombe interval of the pooled images, so seeds that happen to agree do not make the uncertainty vanish. This is
    /// the one rule behind every "clearly" of the report, results.md and the reading.
    /// </summary>
    public static Estimate OfDifferences(IReadOnlyList<(ProportionEstimate A, ProportionEstimate B)> perSeed)
    {
        if (perSeed.Count == 0) throw new ArgumentException("No measurements to summarise.");
        if (perSeed.Any(p => p.A.Trials == 0 || p.B.Trials == 0)) throw new ArgumentException("A share without trials has no difference.");
        var pooled = Newcombe(ProportionEstimate.Pooled(perSeed.Select(p => p.A)), ProportionEstimate.Pooled(perSeed.Select(p => p.B)));
        if (perSeed.Count == 1) return pooled;
        var t = OfValues(perSeed.Select(p => p.A.Rate - p.B.Rate).ToList());
        return t with { Lower = Math.Max(-1, Math.Min(t.Lower, pooled.Lower)), Upper = Math.Min(1, Math.Max(t.Upper, pooled.Upper)) };
    }

    /// <summary>Newcombe (1998), method 10: a − b with the hybrid score interval of two independent Wilson intervals.</summary>
    public static Estimate Newcombe(ProportionEstimate a, ProportionEstimate b)
    {
        double d = a.Rate - b.Rate;
        double lower = d - Math.Sqrt(Square(a.Rate - a.Lower) + Square(b.Upper - b.Rate));
        double upper = d + Math.Sqrt(Square(a.Upper - a.Rate) + Square(b.Rate - b.Lower));
        return new Estimate(d, Math.Max(-1, lower), Math.Min(1, upper), Math.Min(a.Trials, b.Trials), NewcombeMethod);
    }

    static double Square(double x) => x * x;

    /// <summary>For a difference: −1 when its interval lies below 0, +1 above, 0 when it includes 0 (not clear at 95%).</summary>
    public int Direction() => !HasInterval ? 0 : Upper < 0 ? -1 : Lower > 0 ? 1 : 0;

    /// <summary>Mean of per-seed values with a Student-t 95% interval; one value is a point estimate.</summary>
    public static Estimate OfValues(IReadOnlyList<double> values)
    {
        if (values.Count == 0) throw new ArgumentException("No measurements to summarise.");
        double mean = values.Average();
        if (values.Count == 1) return new Estimate(mean, mean, mean, 1, PointMethod);
        double variance = values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1);
        double half = StudentT975(values.Count - 1) * Math.Sqrt(variance / values.Count);
        return new Estimate(mean, mean - half, mean + half, values.Count, SeedsMethod);
    }

    /// <summary><see cref="OfValues"/> for quantities that cannot be negative (distances, times, shares): the interval is clamped at 0.</summary>
    public static Estimate OfNonNegative(IReadOnlyList<double> values)
    {
        var e = OfValues(values);
        return e with { Lower = Math.Max(0, e.Lower) };
    }

    /// <summary>The two-sided 95% quantile of Student's t with <paramref name="df"/> degrees of freedom.</summary>
    public static double StudentT975(int df)
    {
        if (df < 1) throw new ArgumentOutOfRangeException(nameof(df), df, "Degrees of freedom must be ≥ 1.");
        double[] table = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                          2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                          2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042];
        return df <= table.Length ? table[df - 1] : 1.960 + 2.4 / df;
    }

    /// <summary>True when the two intervals do not overlap (a conservative test of a difference).</summary>
    public bool ClearlyBelow(Estimate other) => HasInterval && other.HasInterval && Upper < other.Lower;

    public bool ClearlyAbove(Estimate other) => other.ClearlyBelow(this);

    /// <summary>"0.825 [0.727, 0.893]"; a point estimate prints without brackets. Negative <paramref name="decimals"/>: that many significant digits in scientific notation (for figures like 1e-7).</summary>
    public string Format(int decimals = 3, double scale = 1)
    {
        if (double.IsNaN(Value)) return "n/a";
        string format = decimals >= 0 ? "F" + decimals : "E" + (-decimals - 1);
        string F(double v) => (v * scale).ToString(format, CultureInfo.InvariantCulture);
        return HasInterval ? $"{F(Value)} [{F(Lower)}, {F(Upper)}]" : F(Value);
    }
}
