namespace Excise.Projection;

/// <summary>How <see cref="ConceptSubspaceBuilder"/> turns concept prompts into a basis.</summary>
/// <param name="Mode">Which states to collect; see <see cref="SubspaceMode"/>.</param>
/// <param name="Energy">Keep the fewest leading directions whose σ² sum reaches this fraction of the total, in (0, 1]. Ignored when <paramref name="Rank"/> is set.</param>
/// <param name="Rank">Keep exactly this many directions (1 ≤ Rank ≤ encoder width, and no more than the vectors' numerical rank).</param>
/// <param name="DuplicateCosine">A vector whose cosine to an already kept vector exceeds this is dropped, in (0, 1].</param>
/// <param name="ExtraPrompts">User prompts; each must contain a concept phrase or a {concept}/{} placeholder (see <see cref="ConceptPrompts.FromLines"/>).</param>
/// <param name="IncludeBuiltInPrompts">Also use <see cref="ConceptSubspaceBuilder.BuiltInPrompts"/>.</param>
public sealed record SubspaceOptions(
    SubspaceMode Mode = SubspaceMode.ConceptTokens,
    double Energy = 0.99,
    int? Rank = null,
    double DuplicateCosine = 0.995,
    IReadOnlyList<string>? ExtraPrompts = null,
    bool IncludeBuiltInPrompts = true)
{
    public void Validate(int width)
    {
        if (!Enum.IsDefined(Mode)) throw new ArgumentOutOfRangeException(nameof(Mode), Mode, "Unknown subspace mode.");
        if (!(Energy > 0 && Energy <= 1)) throw new ArgumentOutOfRangeException(nameof(Energy), Energy, "Energy must be in (0, 1], e.g. 0.99.");
        if (Rank is { } rank && (rank < 1 || rank > width))
            throw new ArgumentOutOfRangeException(nameof(Rank), rank,
                $"Rank {rank} is impossible: a subspace of the encoder's {width}-dimensional states has 1 to {width} directions.");
        if (!(DuplicateCosine > 0 && DuplicateCosine <= 1))
            throw new ArgumentOutOfRangeException(nameof(DuplicateCosine), DuplicateCosine, "DuplicateCosine must be in (0, 1], e.g. 0.995.");
        if (!IncludeBuiltInPrompts && (ExtraPrompts is null || ExtraPrompts.Count == 0))
            throw new ArgumentException("No prompts: built-in prompts are switched off and no extra prompts were given.");
    }
}
