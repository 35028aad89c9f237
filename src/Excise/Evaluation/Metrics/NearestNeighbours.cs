using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Evaluation.Metrics;

/// <summary>A generated sample's two nearest training samples (Euclidean distance).</summary>
/// <param name="Ratio">Nearest / second-nearest distance; 0 when both are 0 (an exact copy of a duplicated training image).</param>
public sealed record NeighbourMatch(int GeneratedIndex, int NearestIndex, double NearestDistance, int SecondIndex, double SecondDistance, double Ratio);

/// <summary>
/// Exact two-nearest-neighbour search of query rows among reference rows. Candidates come from the float32
/// expansion ‖q‖² + ‖r‖² − 2 qᵀr (one matmul per chunk of queries, so memory is chunk × references), and the
/// best few candidates are re-measured directly in float64: exact copies get distance exactly 0, and near-ties
/// that the expansion's cancellation error could swap are ordered correctly.
/// </summary>
public static class NearestNeighbours
{
    private const int Candidates = 8;

    /// <param name="normalise">Scale every row to unit L2 norm first (distances then lie in [0, 2] and depend only on angle).</param>
    /// <param name="chunkSize">Queries per distance block; a block holds chunkSize × references floats.</param>
    public static NeighbourMatch[] Search(IReadOnlyList<float[]> queries, IReadOnlyList<float[]> references, bool normalise = false, int chunkSize = 256)
    {
        if (chunkSize < 1) throw new ArgumentOutOfRangeException(nameof(chunkSize), $"Chunk size must be >= 1, got {chunkSize}.");
        using var scope = NewDisposeScope();
        var reference = FeatureMatrix.Stack(references, "training (reference) features", ScalarType.Float32, minimumRows: 2);
        var query = FeatureMatrix.Stack(queries, "generated (query) features", ScalarType.Float32, minimumRows: 0);
        if (queries.Count == 0) return [];
        FeatureMatrix.RequireSameDimension((int)query.shape[1], (int)reference.shape[1], "generated features", "training features");
        if (normalise)
        {
            reference = Normalise(reference, "training features");
            query = Normalise(query, "generated features");
        }
        var referenceNorms = reference.square().sum(1);
        int candidates = (int)Math.Min(Candidates, reference.shape[0]);

        var matches = new NeighbourMatch[queries.Count];
        for (int start = 0; start < queries.Count; start += chunkSize)
        {
            using var chunkScope = NewDisposeScope();
            int count = Math.Min(chunkSize, queries.Count - start);
            var block = query.narrow(0, start, count);
            var squared = torch.addmm(referenceNorms.unsqueeze(0) + block.square().sum(1, keepdim: true), block, reference.t(), beta: 1, alpha: -2);
            var (_, candidateIndices) = squared.topk(candidates, dim: 1, largest: false, sorted: true);
            // Only the candidates go to float64: a float64 copy of 60 000 training rows would double the memory.
            var candidateRows = reference.index_select(0, candidateIndices.flatten()).to(ScalarType.Float64).view(count, candidates, -1);
            var exact = (candidateRows - block.to(ScalarType.Float64).unsqueeze(1)).square().sum(2).sqrt();
            var (distances, order) = exact.sort(dim: 1, stable: true);
            var indices = candidateIndices.gather(1, order);
            var d = distances.narrow(1, 0, 2).contiguous().data<double>().ToArray();
            var idx = indices.narrow(1, 0, 2).contiguous().data<long>().ToArray();
            for (int i = 0; i < count; i++)
            {
                double nearest = d[2 * i], second = d[2 * i + 1];
                double ratio = second == 0 ? 0 : nearest / second;
                matches[start + i] = new NeighbourMatch(start + i, (int)idx[2 * i], nearest, (int)idx[2 * i + 1], second, ratio);
            }
        }
        return matches;
    }

    private static Tensor Normalise(Tensor rows, string what)
    {
        var norms = rows.norm(1, keepdim: true);
        if (norms.eq(0).any().ToBoolean())
            throw new ArgumentException($"{what}: a row is all zeros and cannot be L2-normalised; use raw distances for this space.");
        return rows / norms;
    }
}
