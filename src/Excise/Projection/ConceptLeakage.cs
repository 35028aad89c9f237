using Excise.Text;

namespace Excise.Projection;

/// <summary>
/// How much of what a concept does to the text states escapes a basis, on prompts of the caller's choosing (the
/// attack prompts, typically). Projection only protects span(U): whatever the concept changes outside it remains a
/// signal the K/V weights can learn to read — and learning can amplify a small residual, so these are shares to
/// drive towards 0, not energies to be content with at 1%.
/// </summary>
/// <param name="ConceptTokensOutside">Share of the concept tokens' squared state norm outside span(U).</param>
/// <param name="ChangesOutside">Share of the concept's effect on the prompt — state differences with and without it at
/// aligned positions, and of the pooled state — outside span(U).</param>
public sealed record ConceptLeakage(int Prompts, int BasisRank, double ConceptTokensOutside, double ChangesOutside)
{
    public static ConceptLeakage Measure(ITextEncoder encoder, ConceptBasis basis, string concept, IReadOnlyList<string> prompts)
    {
        var located = prompts.Select(p => ConceptPrompt.FromLiteral(p, concept)
            ?? throw new ArgumentException($"prompt '{p}' does not contain the concept '{concept}'.")).ToList();
        var tokens = ConceptVectorCollector.Collect(encoder, located, SubspaceMode.ConceptTokens);
        var changes = ConceptVectorCollector.Collect(encoder, located, SubspaceMode.Contrastive);
        return new ConceptLeakage(located.Count, basis.Rank,
            1 - SubspaceMath.CapturedEnergyFraction(basis.U, tokens),
            1 - SubspaceMath.CapturedEnergyFraction(basis.U, changes));
    }
}
