using System.Text.Json.Serialization;
using Excise.Diffusion;

namespace Excise.Attacks;

/// <summary>
/// What every attack shares: how many images per prompt and how they are sampled (<see cref="Sampler"/>, steps, guidance). Each sampling batch is seeded
/// from (<see cref="Seed"/>, batch index), so the same settings give the same images.
/// </summary>
public sealed record AttackSettings(
    AttackKind Kind,
    int ImagesPerPrompt = 8,
    double GuidanceScale = 3.0,
    int SamplingSteps = 50,
    long Seed = 0,
    int BatchSize = 32,
    ParaphraseSettings? Paraphrase = null,
    InversionSettings? Inversion = null,
    SamplerKind Sampler = SamplerKind.Ddim)
{
    [JsonIgnore] public ParaphraseSettings ParaphraseOrDefault => Paraphrase ?? new ParaphraseSettings();
    [JsonIgnore] public InversionSettings InversionOrDefault => Inversion ?? new InversionSettings();

    /// <summary>The inversion budget this kind runs: the control keeps every setting but learns for zero steps.</summary>
    [JsonIgnore] public InversionSettings InversionForKind =>
        Kind == AttackKind.InversionControl ? InversionOrDefault with { Steps = 0 } : InversionOrDefault;

    /// <summary>These settings with only the kind-specific record that applies (defaults filled in), as attack.json records them.</summary>
    public AttackSettings Effective() => this with
    {
        Paraphrase = Kind == AttackKind.Paraphrase ? ParaphraseOrDefault : null,
        Inversion = AttackKinds.UsesInversion(Kind) ? InversionForKind : null,
    };

    public void Validate()
    {
        if (ImagesPerPrompt < 1) throw new ArgumentException($"attack images per prompt must be ≥ 1 (got {ImagesPerPrompt}).");
        if (!(GuidanceScale >= 0)) throw new ArgumentException($"attack guidance scale must be ≥ 0 (got {GuidanceScale}).");
        if (SamplingSteps < 1) throw new ArgumentException($"attack sampling steps must be ≥ 1 (got {SamplingSteps}).");
        if (BatchSize < 1) throw new ArgumentException($"attack batch size must be ≥ 1 (got {BatchSize}).");
        if (Kind == AttackKind.Paraphrase) ParaphraseOrDefault.Validate();
        if (AttackKinds.UsesInversion(Kind)) InversionForKind.Validate();
    }
}

/// <param name="File">Extra paraphrases, one per line; a line with <c>{class}</c> is used for every class, one without it verbatim.</param>
/// <param name="IncludeBuiltIn">Use the paraphrases derived from the concept phrase as well.</param>
public sealed record ParaphraseSettings(string? File = null, bool IncludeBuiltIn = true)
{
    public void Validate()
    {
        if (File is not null && !System.IO.File.Exists(File)) throw new ArgumentException($"paraphrases file not found: {File}");
        if (File is null && !IncludeBuiltIn) throw new ArgumentException("paraphrase attack: no built-in paraphrases and no paraphrases file: nothing to prompt with.");
    }
}

public enum InversionInit
{
    /// <summary>The encoder's state of <see cref="InversionSettings.PlaceholderWord"/> in the template, averaged over the images' prompts.</summary>
    PlaceholderWord,
    /// <summary>The mean state of all real tokens of the images' prompts.</summary>
    PromptMean,
}

/// <summary>
/// Textual inversion's budget: <see cref="Images"/> held-out concept images, <see cref="Steps"/> Adam steps on
/// <see cref="Vectors"/> token states (each step one UNet forward and backward at <see cref="BatchSize"/> images).
/// </summary>
/// <param name="Template">Prompt with <c>{class}</c> (the image's class noun) and the learned token <c>&lt;*&gt;</c>.</param>
/// <param name="PlaceholderWord">Encoded where <c>&lt;*&gt;</c> stands (once per vector) before its states are replaced; must be one token.</param>
/// <param name="EvaluationDraws">Fixed (timestep, noise) draws per image for the before/after denoising loss.</param>
/// <param name="TimestepLow">Learning draws timesteps from [low, high] × the schedule's length (0–1: all of it).</param>
/// <param name="TimestepHigh">Upper end of that band.</param>
public sealed record InversionSettings(
    int Images = 16,
    int Steps = 300,
    double LearningRate = 5e-3,
    int Vectors = 1,
    int BatchSize = 16,
    string Template = "a photo of a {class} with <*>",
    string PlaceholderWord = "logo",
    InversionInit Init = InversionInit.PlaceholderWord,
    int EvaluationDraws = 4,
    double TimestepLow = 0,
    double TimestepHigh = 1)
{
    public const string Token = "<*>";

    /// <summary>
    /// A placeholder that names no part of the concept: starting from it, everything the adversary extracts is what it
    /// learned, not what the word "logo" already does (compare both: docs/attacks.md).
    /// </summary>
    public const string NeutralPlaceholder = "something";

    public void Validate()
    {
        if (Images < 1) throw new ArgumentException($"inversion images must be ≥ 1 (got {Images}).");
        if (Steps < 0) throw new ArgumentException($"inversion steps must be ≥ 0 (got {Steps}).");
        if (!(LearningRate > 0) || !double.IsFinite(LearningRate)) throw new ArgumentException($"inversion learning rate must be a positive number (got {LearningRate}).");
        if (Vectors < 1 || Vectors > 8) throw new ArgumentException($"inversion vectors must be within [1, 8] (got {Vectors}).");
        if (BatchSize < 1) throw new ArgumentException($"inversion batch size must be ≥ 1 (got {BatchSize}).");
        if (!(TimestepLow >= 0 && TimestepLow < TimestepHigh && TimestepHigh <= 1))
            throw new ArgumentException($"inversion timestep band must satisfy 0 ≤ low < high ≤ 1 (got [{TimestepLow}, {TimestepHigh}]).");
        if (EvaluationDraws < 1) throw new ArgumentException($"inversion evaluation draws must be ≥ 1 (got {EvaluationDraws}).");
        int tokens = Template.Split(Token).Length - 1;
        if (tokens != 1) throw new ArgumentException($"inversion template must contain {Token} exactly once (got '{Template}').");
        if (string.IsNullOrWhiteSpace(PlaceholderWord) || PlaceholderWord.Contains(' '))
            throw new ArgumentException($"inversion placeholder word must be a single word (got '{PlaceholderWord}').");
    }
}
