using System.Text.RegularExpressions;

namespace Excise.Models.Lora;

/// <summary>
/// Where and how large the LoRA adapters are. Each entry of <see cref="Targets"/> is a .NET regular expression
/// searched (unanchored) in the full module name of every attention q/k/v projection, e.g.
/// <c>down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k</c>; a plain dotted name such as <c>attn2.to_k</c>
/// therefore works as a substring, and <c>^up_blocks\..*attn2\.to_v$</c> as a precise selection.
/// A layer is adapted when any target matches it; every target must match at least one layer.
/// </summary>
/// <param name="Rank">r, the inner width of B·A; 1 ≤ r ≤ min(in, out) of every adapted layer.</param>
/// <param name="Alpha">α; the update is scaled by α/r (PEFT's convention), so α = r gives scale 1.</param>
/// <param name="Targets">Module-name patterns; null means <see cref="DefaultTargets"/>, the cross-attention key and value.</param>
/// <param name="Seed">Seeds A's initialisation, per layer by name, independently of the global generator.</param>
public sealed record LoraOptions(int Rank = 4, double Alpha = 4, IReadOnlyList<string>? Targets = null, long Seed = 0)
{
    public static IReadOnlyList<string> DefaultTargets { get; } = ["attn2.to_k", "attn2.to_v"];

    public IReadOnlyList<string> TargetPatterns => Targets ?? DefaultTargets;

    /// <summary>α/r, the factor on B·A.</summary>
    public double Scale => Alpha / Rank;

    public LoraOptions Validate()
    {
        if (Rank < 1) throw new ArgumentOutOfRangeException(nameof(Rank), Rank, "LoRA rank must be at least 1.");
        if (!double.IsFinite(Alpha) || Alpha <= 0) throw new ArgumentOutOfRangeException(nameof(Alpha), Alpha, "LoRA alpha must be a finite positive number.");
        if (TargetPatterns.Count == 0) throw new ArgumentException("LoRA targets are empty; give at least one module-name pattern (or null for the defaults).", nameof(Targets));
        foreach (var pattern in TargetPatterns) _ = TargetRegex(pattern);
        return this;
    }

    internal static Regex TargetRegex(string pattern)
    {
        if (string.IsNullOrWhiteSpace(pattern)) throw new ArgumentException("A LoRA target pattern is empty.", nameof(Targets));
        return Configuration.NamePattern.Compile(pattern, "LoRA target");
    }
}
