using Excise.Configuration;

namespace Excise.Models.Lora;

/// <summary>Train low-rank adapters on the selected linear layers instead of the full weights (the base stays frozen).</summary>
public sealed record LoraConfig(int Rank = 4, double Alpha = 4, IReadOnlyList<string>? Targets = null)
{
    public void Validate()
    {
        if (Rank < 1) throw new ArgumentException($"lora.rank must be ≥ 1 (got {Rank}).");
        if (!(Alpha > 0) || !double.IsFinite(Alpha)) throw new ArgumentException($"lora.alpha must be a positive number (got {Alpha}).");
        ConfigRules.RequireRegexes(Targets, "lora.targets");
    }
}
