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

public static class AttackKinds
{
    public static string Name(AttackKind kind) => kind switch
    {
        AttackKind.Prompt => "prompt",
        AttackKind.Paraphrase => "paraphrase",
        AttackKind.Inversion => "inversion",
        AttackKind.InversionControl => "inversion-control",
        AttackKind.BaselineRate => "baseline-rate",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown attack kind."),
    };

    /// <summary>Both inversion kinds learn (or start from) placeholder vectors on held-out concept images.</summary>
    public static bool UsesInversion(AttackKind kind) => kind is AttackKind.Inversion or AttackKind.InversionControl;

    public static AttackKind Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "prompt" => AttackKind.Prompt,
        "paraphrase" => AttackKind.Paraphrase,
        "inversion" or "textual-inversion" => AttackKind.Inversion,
        "inversion-control" => AttackKind.InversionControl,
        "baseline-rate" or "baseline" => AttackKind.BaselineRate,
        _ => throw new ArgumentException($"attack kind must be prompt, paraphrase, inversion, inversion-control or baseline-rate (got '{text}')."),
    };
}
