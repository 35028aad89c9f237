using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Evaluation.Metrics;

/// <summary>Checks feature rows (one per image) and stacks them into an [N, D] tensor.</summary>
internal static class FeatureMatrix
{
    /// <param name="what">Names the set in error messages ("reference features", "training features").</param>
    public static int CheckedDimension(IReadOnlyList<float[]> rows, string what, int minimumRows = 1)
    {
        ArgumentNullException.ThrowIfNull(rows, what);
        if (rows.Count < minimumRows)
            throw new ArgumentException($"{what}: need at least {minimumRows} rows, got {rows.Count}.");
        int dimension = rows.Count == 0 ? 0 : rows[0]?.Length ?? throw new ArgumentException($"{what}: row 0 is null.");
        if (rows.Count > 0 && dimension == 0) throw new ArgumentException($"{what}: rows are empty (dimension 0).");
        for (int i = 0; i < rows.Count; i++)
        {
            var row = rows[i] ?? throw new ArgumentException($"{what}: row {i} is null.");
            if (row.Length != dimension)
                throw new ArgumentException($"{what}: row {i} has {row.Length} values, row 0 has {dimension}.");
            for (int j = 0; j < row.Length; j++)
                if (!float.IsFinite(row[j]))
                    throw new ArgumentException($"{what}: row {i} has a non-finite value {row[j]} at {j}.");
        }
        return dimension;
    }

    /// <summary>[N, D] tensor of the rows (validated), in <paramref name="type"/>.</summary>
    public static Tensor Stack(IReadOnlyList<float[]> rows, string what, ScalarType type = ScalarType.Float64, int minimumRows = 1)
    {
        int dimension = CheckedDimension(rows, what, minimumRows);
        var flat = new float[(long)rows.Count * dimension];
        for (int i = 0; i < rows.Count; i++) rows[i].CopyTo(flat, (long)i * dimension);
        var stacked = tensor(flat, new long[] { rows.Count, dimension });
        if (type == ScalarType.Float32) return stacked;
        using (stacked) return stacked.to(type);
    }

    public static void RequireSameDimension(int a, int b, string whatA, string whatB)
    {
        if (a != b) throw new ArgumentException($"{whatA} have dimension {a} but {whatB} have {b}; they must come from the same feature extractor.");
    }
}
