namespace Excise.Attacks;

/// <summary>Where an attack's time went.</summary>
/// <param name="Preparation">Everything before sampling: loading held-out images and learning the token for inversion.</param>
public sealed record AttackTiming(TimeSpan Total, TimeSpan Preparation, TimeSpan Sampling, int SampledImages)
{
    public double SecondsPerImage => SampledImages > 0 ? Sampling.TotalSeconds / SampledImages : 0;
}

/// <summary>What an attack produced: its images in prompt-major order, each with its prompt and intended class.</summary>
/// <param name="Brand">For paraphrase attacks, the brand words derived from the concept phrase (null if none).</param>
public sealed record AttackResult(
    AttackKind Kind,
    string Concept,
    AttackSettings Settings,
    IReadOnlyList<AttackPrompt> Prompts,
    IReadOnlyList<AttackImage> Images,
    AttackTiming Timing,
    InversionReport? Inversion = null,
    string? Brand = null,
    string? OutputDirectory = null)
{
    /// <summary>The images of one prompt, in replicate order.</summary>
    public IReadOnlyList<AttackImage> ImagesOf(int promptIndex) => Images.Where(i => i.PromptIndex == promptIndex).ToList();
}

/// <summary>Progress of an attack: <see cref="Phase"/> is "inversion" (steps) or "sampling" (images).</summary>
public sealed record AttackProgress(string Phase, int Done, int Total, string Status);
