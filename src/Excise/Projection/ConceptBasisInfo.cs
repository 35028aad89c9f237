namespace Excise.Projection;

/// <summary>How a <see cref="ConceptBasis"/> was made; stored with it as safetensors metadata.</summary>
/// <param name="Concepts">The concept phrases the basis prohibits.</param>
/// <param name="Prompts">Every prompt whose states were collected (for a union: all inputs' prompts).</param>
/// <param name="EncoderId">The text encoder's <see cref="Excise.Text.ITextEncoder.Id"/>; a basis only fits that encoder.</param>
/// <param name="EnergyKept">Fraction of the collected vectors' Σσ² inside the basis; for a union, the smallest of the inputs'.</param>
/// <param name="Rank">Number of basis directions k.</param>
/// <param name="SingularValues">
/// Descending singular values of the kept vectors (all of them, not only the leading k, so the energy curve can be
/// inspected). For a union: the singular values of the stacked input bases [U1 … Um], where √m marks a direction
/// shared by all inputs and 1 a direction only one of them has.
/// </param>
/// <param name="VectorsCollected">State vectors extracted from the prompts.</param>
/// <param name="VectorsKept">Vectors left after dropping near-duplicates and negligible ones; the SVD input.</param>
public sealed record ConceptBasisInfo(
    IReadOnlyList<string> Concepts,
    IReadOnlyList<string> Prompts,
    string EncoderId,
    SubspaceMode Mode,
    double EnergyKept,
    int Rank,
    IReadOnlyList<double> SingularValues,
    int VectorsCollected,
    int VectorsKept);
