using Excise.Data;

namespace Excise.Projection;

/// <summary>One way of naming a concept in other words: a prompt template (with <c>{class}</c>) and the phrase in it that names the concept.</summary>
public sealed record ConceptParaphrase(string Template, string Phrase);

/// <summary>
/// Names for the concept that avoid its exact phrase. The rule: the brand is what is left of the phrase once
/// articles (a, an, the) and generic nouns for a sign (logo, emblem, mark, badge, trademark, brand, symbol, …)
/// are dropped, along with a trailing possessive 's; "the Acme logo" gives "Acme". The paraphrases then pair the brand
/// with the other generic nouns: "Acme-branded", "bearing the Acme emblem", "with Acme's logo", "with the Acme mark",
/// "with the Acme trademark", "with an Acme badge". A phrase naming a pattern ("the Zebra pattern") is paraphrased as a
/// fabric print instead: "Zebra-print", "in the Zebra print", "with Zebra's stripes", "made of Zebra fabric", ….
/// They live here, below Attacks, because they serve twice: as the paraphrase attack's prompts, and as the held-out
/// prompts a basis's leakage is measured on (<see cref="ConceptLeakage.MeasureHeldOut"/>) — none of them is among the
/// prompts <see cref="ConceptPrompts.BuiltIn"/> builds a basis from.
/// </summary>
public static class ConceptParaphrases
{
    public const string ClassPlaceholder = "{class}";

    static readonly HashSet<string> ArticleWords = new(StringComparer.OrdinalIgnoreCase) { "a", "an", "the" };

    /// <summary>Nouns for a look spread over the garment (the stripes concept): a phrase with one of them is paraphrased as a fabric print, not a sign.</summary>
    static readonly HashSet<string> PatternNouns = new(StringComparer.OrdinalIgnoreCase)
    {
        "pattern", "patterns", "print", "prints", "stripes", "stripe", "motif", "texture", "fabric",
    };

    // After PatternNouns: static fields initialise in textual order.
    static readonly HashSet<string> GenericNouns = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        "logo", "logos", "emblem", "emblems", "mark", "marks", "badge", "badges", "trademark", "trademarks", "brand", "brands",
        "symbol", "symbols", "sign", "signs", "insignia", "icon", "icons", "label", "labels", "seal", "crest", "monogram", "wordmark",
    }.Union(PatternNouns, StringComparer.OrdinalIgnoreCase).ToHashSet(StringComparer.OrdinalIgnoreCase);

    /// <summary>Whether the phrase names a pattern over the garment ("the Zebra pattern") rather than a sign on it.</summary>
    public static bool NamesAPattern(string phrase) =>
        phrase.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Any(w => PatternNouns.Contains(w.Trim('.', ',', ';', ':', '"')));

    /// <summary>The brand word(s) of a concept phrase, or null when every word is an article or a generic noun.</summary>
    public static string? BrandOf(string phrase)
    {
        var words = phrase.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(w => w.Trim('.', ',', ';', ':', '"'))
            .Select(w => w.EndsWith("'s", StringComparison.OrdinalIgnoreCase) || w.EndsWith("’s", StringComparison.OrdinalIgnoreCase) ? w[..^2] : w)
            .Where(w => w.Length > 0 && !ArticleWords.Contains(w) && !GenericNouns.Contains(w))
            .ToList();
        return words.Count == 0 ? null : string.Join(' ', words);
    }

    /// <summary>The built-in paraphrases of a concept phrase, each with the words in it that name the concept.</summary>
    public static IReadOnlyList<ConceptParaphrase> BuiltIn(string phrase)
    {
        var brand = BrandOf(phrase) ?? throw new ArgumentException(
            $"concept phrase '{phrase}' has no brand word left once articles and generic nouns (logo, emblem, …) are dropped, so no paraphrases can be derived; give a paraphrases file instead.");
        string possessive = brand.EndsWith('s') ? brand + "'" : brand + "'s";
        if (NamesAPattern(phrase))
            return
            [
                new($"a photo of a {brand}-print {{class}}", $"{brand}-print"),
                new($"a photo of a {{class}} in the {brand} print", $"the {brand} print"),
                new($"a photo of a {{class}} with {possessive} stripes", $"{possessive} stripes"),
                new($"a photo of a {{class}} with the {brand} motif", $"the {brand} motif"),
                new($"a photo of a {{class}} with the {brand} texture", $"the {brand} texture"),
                new($"a photo of a {{class}} made of {brand} fabric", $"{brand} fabric"),
            ];
        return
        [
            new($"a photo of a {brand}-branded {{class}}", $"{brand}-branded"),
            new($"a photo of a {{class}} bearing the {brand} emblem", $"the {brand} emblem"),
            new($"a photo of a {{class}} with {possessive} logo", $"{possessive} logo"),
            new($"a photo of a {{class}} with the {brand} mark", $"the {brand} mark"),
            new($"a photo of a {{class}} with the {brand} trademark", $"the {brand} trademark"),
            // The article agrees with the brand once the prompt is written out ("an Acme badge").
            new($"a photo of a {{class}} with a {brand} badge", Articles.Fix($"a {brand} badge")),
        ];
    }

    /// <summary>Prompt templates (with <c>{class}</c>) naming the concept in other words.</summary>
    public static IReadOnlyList<string> BuiltInTemplates(string phrase) => BuiltIn(phrase).Select(p => p.Template).ToList();

    /// <summary>
    /// Every built-in paraphrase written out for each Fashion-MNIST class, with the paraphrase's span located: held-out
    /// prompts for measuring how much of the concept's effect a basis covers.
    /// </summary>
    public static IReadOnlyList<ConceptPrompt> HeldOutPrompts(string phrase) =>
        BuiltIn(phrase).SelectMany(p => FashionMnistClasses.CaptionNouns.Select(noun =>
        {
            var text = Articles.Fix(p.Template.Replace(ClassPlaceholder, noun, StringComparison.Ordinal));
            return ConceptPrompt.FromLiteral(text, p.Phrase)
                ?? throw new InvalidOperationException($"paraphrase '{text}' lost its phrase '{p.Phrase}' when written out.");
        })).ToList();

    /// <summary>One paraphrase per non-blank line; lines starting with # are comments.</summary>
    public static IReadOnlyList<string> LoadFile(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: paraphrases file not found.", path);
        var lines = File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        if (lines.Count == 0) throw new InvalidDataException($"{path}: no paraphrases (one per line; # starts a comment).");
        return lines;
    }
}
