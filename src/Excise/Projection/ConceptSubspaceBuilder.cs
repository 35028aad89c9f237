using Excise.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Projection;

/// <summary>
/// Builds the prohibited subspace of one or more concepts: encode the concept inside many prompts, collect the state
/// vectors of the chosen <see cref="SubspaceMode"/>, drop near-duplicates, and keep the leading right singular
/// vectors of the vector matrix. The vectors are deliberately NOT mean-centred: the projection must block the
/// concept's directions themselves, and centring would remove exactly the component all concept states share (for
/// MiniLM the largest one), leaving only how they vary between prompts.
/// </summary>
public static class ConceptSubspaceBuilder
{
    /// <summary>The built-in prompts of a concept: every class template for each Fashion-MNIST class, plus concept-only phrasings.</summary>
    public static IReadOnlyList<string> BuiltInPrompts(string concept) => ConceptPrompts.BuiltIn(concept).Select(p => p.Text).ToList();

    /// <summary>
    /// All prompts of all <paramref name="concepts"/> go into one vector matrix, so the basis spans them jointly
    /// (use <see cref="ConceptBasis.Union"/> to add a concept to an existing basis instead).
    /// </summary>
    public static ConceptBasis Build(ITextEncoder encoder, IReadOnlyList<string> concepts, SubspaceOptions options)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate(encoder.Width);
        var prompts = Prompts(concepts, options);

        var collected = ConceptVectorCollector.Collect(encoder, prompts, options.Mode);
        var kept = SubspaceMath.DropNearDuplicates(collected, options.DuplicateCosine);
        if (kept.Count == 0) throw new InvalidOperationException($"All {collected.Count} collected vectors are negligible; nothing spans the concept.");

        var (singularValues, rightVectors) = SubspaceMath.Decompose(kept);
        using var _ = rightVectors;
        int available = SubspaceMath.NumericalRank(singularValues, kept.Count, encoder.Width);
        int rank;
        if (options.Rank is { } fixedRank)
        {
            if (fixedRank > available)
                throw new ArgumentOutOfRangeException(nameof(options.Rank), fixedRank,
                    $"Rank {fixedRank} exceeds the {available} independent directions in the {kept.Count} kept vectors; " +
                    "lower the rank, add prompts, or use an energy threshold.");
            rank = fixedRank;
        }
        else rank = SubspaceMath.RankForEnergy(singularValues, options.Energy, available);

        using var scope = NewDisposeScope();
        var basis = rightVectors[..rank].t();
        var info = new ConceptBasisInfo(
            concepts.ToList(),
            prompts.Select(p => p.Text).Distinct(StringComparer.Ordinal).ToList(),
            encoder.Id,
            options.Mode,
            SubspaceMath.CumulativeEnergy(singularValues)[rank - 1],
            rank,
            singularValues,
            collected.Count,
            kept.Count);
        return new ConceptBasis(basis, info);
    }

    /// <summary>The prompts <see cref="Build"/> uses: built-in ones per concept (if enabled), then the extra prompts.</summary>
    public static IReadOnlyList<ConceptPrompt> Prompts(IReadOnlyList<string> concepts, SubspaceOptions options)
    {
        if (concepts is null || concepts.Count == 0) throw new ArgumentException("Give at least one concept phrase.");
        foreach (var concept in concepts) ConceptPrompts.ValidateConcept(concept);
        var repeated = concepts.GroupBy(c => c, StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1);
        if (repeated is not null) throw new ArgumentException($"Concept \"{repeated.Key}\" is listed twice.");

        var prompts = new List<ConceptPrompt>();
        if (options.IncludeBuiltInPrompts)
            foreach (var concept in concepts) prompts.AddRange(ConceptPrompts.BuiltIn(concept));
        if (options.ExtraPrompts is { Count: > 0 } extra)
            prompts.AddRange(ConceptPrompts.FromLines(concepts, extra, "extra prompts"));
        if (prompts.Count == 0) throw new ArgumentException("No prompts to build the subspace from.");
        return prompts;
    }
}
