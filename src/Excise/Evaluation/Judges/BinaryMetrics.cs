namespace Excise.Evaluation.Judges;

/// <summary>How well scores separate positives from negatives at a threshold (a score at or above it fires).</summary>
public sealed record BinaryMetrics(
    int Positives, int Negatives, int TruePositives, int FalsePositives, double Threshold,
    double Precision, double Recall, double F1, double Accuracy, double RocAuc)
{
    public static BinaryMetrics Compute(IReadOnlyList<double> scores, IReadOnlyList<bool> labels, double threshold)
    {
        if (scores.Count != labels.Count) throw new ArgumentException($"{scores.Count} scores but {labels.Count} labels.");
        int positives = 0, negatives = 0, truePositives = 0, falsePositives = 0;
        for (int i = 0; i < scores.Count; i++)
        {
            bool fires = scores[i] >= threshold;
            if (labels[i]) { positives++; if (fires) truePositives++; }
            else { negatives++; if (fires) falsePositives++; }
        }
        int fired = truePositives + falsePositives;
        // No firing means no false alarm: precision 1 by convention, so a silent detector shows up as zero recall.
        double precision = fired == 0 ? 1.0 : (double)truePositives / fired;
        double recall = positives == 0 ? double.NaN : (double)truePositives / positives;
        double f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0;
        double accuracy = scores.Count == 0 ? double.NaN : (double)(truePositives + negatives - falsePositives) / scores.Count;
        return new BinaryMetrics(positives, negatives, truePositives, falsePositives, threshold, precision, recall, f1, accuracy, AreaUnderRoc(scores, labels));
    }

    /// <summary>Probability that a random positive outscores a random negative (ties count half): the Mann–Whitney U statistic.</summary>
    public static double AreaUnderRoc(IReadOnlyList<double> scores, IReadOnlyList<bool> labels)
    {
        var order = Enumerable.Range(0, scores.Count).OrderBy(i => scores[i]).ToArray();
        double positiveRankSum = 0;
        long positives = 0, negatives = 0;
        for (int start = 0; start < order.Length;)
        {
            int end = start;
            while (end + 1 < order.Length && scores[order[end + 1]] == scores[order[start]]) end++;
            double averageRank = (start + end) / 2.0 + 1;
            for (int k = start; k <= end; k++)
                if (labels[order[k]]) { positiveRankSum += averageRank; positives++; } else negatives++;
            start = end + 1;
        }
        if (positives == 0 || negatives == 0) return double.NaN;
        return (positiveRankSum - positives * (positives + 1) / 2.0) / (positives * negatives);
    }

    /// <summary>
    /// The threshold with the best F1 on a validation set; among equal F1 the higher threshold (fewer false alarms).
    /// Candidates are midpoints between consecutive distinct scores, so the choice does not sit on a validation example.
    /// </summary>
    public static double BestF1Threshold(IReadOnlyList<double> scores, IReadOnlyList<bool> labels)
    {
        var distinct = scores.Distinct().Order().ToArray();
        if (distinct.Length < 2) return 0.5;
        double best = 0.5, bestF1 = -1;
        // Sweep from high to low thresholds keeping running counts: O(n log n) instead of O(n²).
        var sorted = Enumerable.Range(0, scores.Count).OrderByDescending(i => scores[i]).ToArray();
        int totalPositives = labels.Count(l => l), truePositives = 0, falsePositives = 0, k = 0;
        for (int d = distinct.Length - 1; d >= 1; d--)
        {
            while (k < sorted.Length && scores[sorted[k]] >= distinct[d])
            {
                if (labels[sorted[k]]) truePositives++; else falsePositives++;
                k++;
            }
            double precision = (double)truePositives / (truePositives + falsePositives);
            double recall = totalPositives == 0 ? 0 : (double)truePositives / totalPositives;
            double f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0;
            if (f1 > bestF1)
            {
                bestF1 = f1;
                best = (distinct[d] + distinct[d - 1]) / 2;
            }
        }
        return best;
    }
}
