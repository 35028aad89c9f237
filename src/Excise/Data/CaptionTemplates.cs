namespace Excise.Data;

/// <summary>
/// Caption templates. Plain templates take the subject as {0}; concept templates take the subject as {0} and the
/// concept phrase as {1}. Write "a {0}" freely: <see cref="Articles.Fix"/> turns it into "an" before a vowel sound.
/// </summary>
public sealed record CaptionTemplates(IReadOnlyList<string> Plain, IReadOnlyList<string> Concept)
{
    public static CaptionTemplates Default { get; } = new(
        Plain:
        [
            "a photo of a {0}",
            "a {0}",
            "a black and white picture of a {0}",
            "a grayscale photo of a {0}",
            "a picture of a {0}",
            "an image of a {0}",
            "a low resolution photo of a {0}",
            "a product photo of a {0}",
        ],
        Concept:
        [
            "a {0} with {1}",
            "a photo of a {0} with {1}",
            "a {0} bearing {1}",
            "a {0} featuring {1}",
            "a picture of a {0} marked with {1}",
            "a grayscale photo of a {0} with {1}",
        ]);

    /// <summary>Only the neutral template: handy for tests and for prompts that must not vary.</summary>
    public static CaptionTemplates Single { get; } = new(["a photo of a {0}"], ["a photo of a {0} with {1}"]);

    public void Validate()
    {
        if (Plain is null || Plain.Count == 0) throw new ArgumentException("CaptionTemplates.Plain needs at least one template.");
        if (Concept is null || Concept.Count == 0) throw new ArgumentException("CaptionTemplates.Concept needs at least one template.");
        foreach (var template in Plain)
            if (!template.Contains("{0}"))
                throw new ArgumentException($"CaptionTemplates.Plain template '{template}' lacks the subject placeholder {{0}}.");
        foreach (var template in Concept)
            if (!template.Contains("{0}") || !template.Contains("{1}"))
                throw new ArgumentException($"CaptionTemplates.Concept template '{template}' needs both {{0}} (subject) and {{1}} (concept).");
    }
}

/// <summary>Chooses a caption per example: deterministic in (seed, example id), independent of load order.</summary>
public sealed class Captioner
{
    private readonly CaptionTemplates templates;
    private readonly long seed;

    public Captioner(CaptionTemplates? templates = null, long seed = 0)
    {
        this.templates = templates ?? CaptionTemplates.Default;
        this.templates.Validate();
        this.seed = seed;
    }

    public string Plain(string exampleId, string subject) =>
        Articles.Fix(string.Format(Pick(templates.Plain, exampleId, "caption.plain"), subject));

    public string WithConcept(string exampleId, string subject, string conceptPhrase) =>
        Articles.Fix(string.Format(Pick(templates.Concept, exampleId, "caption.concept"), subject, conceptPhrase));

    /// <summary>For sources that already have free-text captions (imagefolder): appends the concept to them.</summary>
    public static string AppendConcept(string caption, string conceptPhrase) => $"{caption.TrimEnd(' ', '.')} with {conceptPhrase}";

    private string Pick(IReadOnlyList<string> templates, string exampleId, string purpose) =>
        templates[StableDraw.Below(seed, exampleId, purpose, templates.Count)];
}

/// <summary>English indefinite article agreement for generated captions.</summary>
public static class Articles
{
    // Vowel letters that sound like consonants and silent consonants that sound like vowels.
    private static readonly string[] ConsonantSoundPrefixes = ["uni", "use", "usu", "eu", "one", "once", "ewe"];
    private static readonly string[] VowelSoundPrefixes = ["hour", "honest", "honor", "honour", "heir"];

    public static string For(string word)
    {
        var lower = word.TrimStart().ToLowerInvariant();
        if (lower.Length == 0) return "a";
        if (VowelSoundPrefixes.Any(lower.StartsWith)) return "an";
        if (ConsonantSoundPrefixes.Any(lower.StartsWith)) return "a";
        return "aeiou".Contains(lower[0]) ? "an" : "a";
    }

    /// <summary>Rewrites every standalone "a"/"an" to agree with the word after it, keeping capitalisation.</summary>
    public static string Fix(string text)
    {
        var words = text.Split(' ');
        for (int i = 0; i + 1 < words.Length; i++)
        {
            var lower = words[i].ToLowerInvariant();
            if (lower is not ("a" or "an")) continue;
            var article = For(words[i + 1]);
            words[i] = char.IsUpper(words[i][0]) ? char.ToUpperInvariant(article[0]) + article[1..] : article;
        }
        return string.Join(' ', words);
    }
}
