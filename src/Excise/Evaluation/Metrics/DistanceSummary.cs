namespace Excise.Evaluation.Metrics;

/// <summary>Five-number summary and mean of a distribution; quartiles interpolate linearly (numpy's default).</summary>
public sealed record DistanceSummary(int Count, double Min, double Q1, double Median, double Q3, double Max, double Mean)
{
    public static DistanceSummary Of(IEnumerable<double> values)
    {
        var sorted = values.ToArray();
        if (sorted.Length == 0) throw new ArgumentException("Cannot summarise an empty set of distances.");
        if (sorted.Any(double.IsNaN)) throw new ArgumentException("Distances contain NaN.");
        Array.Sort(sorted);
        double Quantile(double q)
        {
            double position = q * (sorted.Length - 1);
            int below = (int)Math.Floor(position);
            int above = Math.Min(below + 1, sorted.Length - 1);
            return sorted[below] + (position - below) * (sorted[above] - sorted[below]);
        }
        return new DistanceSummary(sorted.Length, sorted[0], Quantile(0.25), Quantile(0.5), Quantile(0.75), sorted[^1], sorted.Average());
    }
}
