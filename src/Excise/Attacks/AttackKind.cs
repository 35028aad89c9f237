namespace Excise.Attacks;

/// <summary>The ways an adversary tries to make the victim draw the concept.</summary>
public enum AttackKind
{
    /// <summary>Name the concept directly, for every class.</summary>
    Prompt,
    /// <summary>Name the concept in other words (derived from the phrase, plus a user list).</summary>
    Paraphrase,
    /// <summary>Learn a new token from held-out images that carry the concept, then prompt with it.</summary>
    Inversion,
    /// <summary>
    /// Inversion's control: the same prompts with the vectors left at their initial value (zero learning steps), so what
    /// inversion gains over the placeholder word alone (T − T₀) is measured, not assumed.
    /// </summary>
    InversionControl,
    /// <summary>Do not name the concept at all: how often the model draws it unasked (the control).</summary>
    BaselineRate,
}

/// <summary>Questions about attack kinds (their spellings are <see cref="Configuration.EnumNames"/>'s).</summary>
public static class AttackKinds
{
    /// <summary>Both inversion kinds learn (or start from) placeholder vectors on held-out concept images.</summary>
    public static bool UsesInversion(AttackKind kind) => kind is AttackKind.Inversion or AttackKind.InversionControl;
}
