using Excise.Projection;
using Excise.Tests.Training;

namespace Excise.Tests.Projection;

/// <summary>Two small real-MiniLM bases (8 user prompts each), built once per test class that needs them.</summary>
public sealed class ConceptBasisFixture : IDisposable
{
    public static readonly string[] SmallTemplates =
    [
        "a bag with {}", "a photo of a sneaker with {}", "{} on a coat", "a dress featuring {}",
        "a picture of {}", "{}", "a grayscale photo of a shirt bearing {}", "an ankle boot marked with {}",
    ];

    public static SubspaceOptions Small(SubspaceMode mode = SubspaceMode.ConceptTokens, double energy = 0.99, int? rank = null) =>
        new(mode, energy, rank, ExtraPrompts: SmallTemplates, IncludeBuiltInPrompts: false);

    public ConceptBasis Acme { get; } = ConceptSubspaceBuilder.Build(TinyRun.Encoder, ["the Acme logo"], Small());
    public ConceptBasis Scarf { get; } = ConceptSubspaceBuilder.Build(TinyRun.Encoder, ["a red scarf"], Small());

    public void Dispose()
    {
        Acme.Dispose();
        Scarf.Dispose();
    }
}
