using Excise.Text;

namespace Excise.Projection;

/// <summary>
/// How much of what a concept does to the text states escapes a basis, on prompts of the caller's choosing. Projection
/// only protects span(U): whatever the concept changes outside it remains a signal the K/V weights can learn to read —
/// and learning can amplify a small residual, so these are shares to drive towards 0, not energies to be content with at 1%.
/// Measured on the prompts a basis was built from, they only say how well the basis fits its own data; the figure to
/// report is <see cref="MeasureHeldOut"/>'s, on prompts the basis never saw.
/// </summary>
/// <param name="Prompts">How many prompts the shares were measured on.</param>
/// <param name="ConceptTokensOutside">Share of the concept tokens' squared state norm outside span(U).</param>
/// <param name="ChangesOutside">Share of the concept's effect on the prompt — state differences with and without it at
/// aligned positions, and of the pooled state — outside span(U).</param>
/// <param name="PromptSet">Which prompts: <see cref="HeldOutParaphrases"/>, or a caller's description.</param>
public sealed record ConceptLeakage(int Prompts, int BasisRank, double ConceptTokensOutside, double ChangesOutside, string PromptSet = "")
{
    public const string HeldOutParaphrases = "held-out paraphrases";

    /// <summary>On literal prompts that each contain <paramref name="concept"/>.</summary>
    public static ConceptLeakage Measure(ITextEncoder encoder, ConceptBasis basis, string concept, IReadOnlyList<string> prompts, string promptSet = "") =>
        Measure(encoder, basis, prompts.Select(p => ConceptPrompt.FromLiteral(p, concept)
            ?? throw new ArgumentException($"prompt '{p}' does not contain the concept '{concept}'.")).ToList(), promptSet);

    /// <summary>On prompts whose concept spans are located (each may name the concept in its own words).</summary>
    public static ConceptLeakage Measure(ITextEncoder encoder, ConceptBasis basis, IReadOnlyList<ConceptPrompt> located, string promptSet = "")
    {
        if (located.Count == 0) throw new ArgumentException("No prompts to measure the basis's leakage on.");
        var tokens = ConceptVectorCollector.Collect(encoder, located, SubspaceMode.ConceptTokens);
        var changes = ConceptVectorCollector.Collect(encoder, located, SubspaceMode.Contrastive);
        return new ConceptLeakage(located.Count, basis.Rank,
            1 - SubspaceMath.CapturedEnergyFraction(basis.U, tokens),
            1 - SubspaceMath.CapturedEnergyFraction(basis.U, changes), promptSet);
    }

    /// <summary>
    /// On the concept's built-in paraphrases written out for every class (<see cref="ConceptParaphrases.HeldOutPrompts"/>),
    /// leaving out any the basis was built from (a user's prompt file may hold some), so every prompt is one the basis never saw.
    /// Null when the phrase has no brand word to paraphrase, or the basis saw them all.
    /// </summary>
    public static ConceptLeakage? MeasureHeldOut(ITextEncoder encoder, ConceptBasis basis, string concept)
    {
        if (ConceptParaphrases.BrandOf(concept) is null) return null;
        var seen = new HashSet<string>(basis.Info.Prompts, StringComparer.OrdinalIgnoreCase);
        var heldOut = ConceptParaphrases.HeldOutPrompts(concept).Where(p => !seen.Contains(p.Text)).ToList();
        return heldOut.Count == 0 ? null : Measure(encoder, basis, heldOut, HeldOutParaphrases);
    }
}
