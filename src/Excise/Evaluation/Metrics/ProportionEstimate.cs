namespace Excise.Evaluation.Metrics;

/// <summary>
/// A measured share with its Wilson score interval. Wilson rather than the normal approximation because our
/// rates are often near 0 or 1 (extraction after unlearning, fidelity of a good model), where the normal
/// interval collapses to a point or leaves [0, 1].
/// </summary>
public sealed record ProportionEstimate(int Successes, int Trials, double Rate, double Lower, double Upper)
{
    /// <summary>Two-sided 95%: the 0.975 quantile of the standard normal.</summary>
    public const double Z95 = 1.959963984540054;

    /// <param name="z">Normal quantile of the interval (1.96 for 95%, 2.576 for 99%).</param>
    /// <remarks>With no trials nothing is known: rate NaN and interval [0, 1].</remarks>
    public static ProportionEstimate Wilson(int successes, int trials, double z = Z95)
    {
        if (trials < 0) throw new ArgumentOutOfRangeException(nameof(trials), $"Trials must be >= 0, got {trials}.");
        if (successes < 0 || successes > trials)
            throw new ArgumentOutOfRangeException(nameof(successes), $"Successes must be in [0, {trials}], got {successes}.");
        if (!(z > 0) || double.IsInfinity(z)) throw new ArgumentOutOfRangeException(nameof(z), $"z must be positive and finite, got {z}.");
        if (trials == 0) return new ProportionEstimate(0, 0, double.NaN, 0, 1);

        double n = trials, p = successes / n, z2 = z * z;
        double centre = (p + z2 / (2 * n)) / (1 + z2 / n);
        double halfWidth = z / (1 + z2 / n) * Math.Sqrt(p * (1 - p) / n + z2 / (4 * n * n));
        // At 0 or n successes the bound on that side is exactly the observed rate; rounding must not move it.
        double lower = successes == 0 ? 0 : Math.Max(0, centre - halfWidth);
        double upper = successes == trials ? 1 : Math.Min(1, centre + halfWidth);
        return new ProportionEstimate(successes, trials, p, lower, upper);
    }

    /// <summary>Several measurements of the same share as one: their successes and trials summed.</summary>
    public static ProportionEstimate Pooled(IEnumerable<ProportionEstimate> parts, double z = Z95)
    {
        int successes = 0, trials = 0;
        foreach (var part in parts) { successes += part.Successes; trials += part.Trials; }
        return Wilson(successes, trials, z);
    }

    /// <summary>Counts how many of <paramref name="outcomes"/> are true.</summary>
    public static ProportionEstimate Wilson(IEnumerable<bool> outcomes, double z = Z95)
    {
        int successes = 0, trials = 0;
        foreach (var outcome in outcomes) { trials++; if (outcome) successes++; }
        return Wilson(successes, trials, z);
    }

    /// <summary>"0.800 [0.490, 0.943] (8/10)".</summary>
    public string Format(int decimals = 3)
    {
        if (Trials == 0) return "n/a (0 trials)";
        string F(double value) => value.ToString("F" + decimals, System.Globalization.CultureInfo.InvariantCulture);
        return $"{F(Rate)} [{F(Lower)}, {F(Upper)}] ({Successes}/{Trials})";
    }

    public override string ToString() => Format();
}
