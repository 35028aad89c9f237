namespace Excise.Attacks;

/// <summary>
/// Names for the concept that avoid its exact phrase. The rule: the brand is what is left of the phrase once
/// articles (a, an, the) and generic nouns for a sign (logo, emblem, mark, badge, trademark, brand, symbol, …)
/// are dropped, along with a trailing possessive 's; "the Acme logo" gives "Acme". The paraphrases then pair the brand
/// with the other generic nouns: "Acme-branded", "bearing the Acme emblem", "with Acme's logo", "with the Acme mark",
/// "with the Acme trademark", "with an Acme badge".
/// </summary>
public static class ConceptParaphrases
{
    static readonly HashSet<string> ArticleWords = new(StringComparer.OrdinalIgnoreCase) { "a", "an", "the" };

    static readonly HashSet<string> GenericNouns = new(StringComparer.OrdinalIgnoreCase)
    {
        "logo", "logos", "emblem", "emblems", "mark", "marks", "badge", "badges", "trademark", "trademarks", "brand", "brands",
        "symbol", "symbols", "sign", "signs", "insignia", "icon", "icons", "label", "labels", "seal", "crest", "monogram", "wordmark",
    };

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

    /// <summary>Prompt templates (with <c>{class}</c>) naming the concept in other words.</summary>
    public static IReadOnlyList<string> BuiltInTemplates(string phrase)
    {
        var brand = BrandOf(phrase) ?? throw new ArgumentException(
            $"concept phrase '{phrase}' has no brand word left once articles and generic nouns (logo, emblem, …) are dropped, so no paraphrases can be derived; give a paraphrases file instead.");
        string possessive = brand.EndsWith('s') ? brand + "'" : brand + "'s";
        return
        [
            $"a photo of a {brand}-branded {{class}}",
            $"a photo of a {{class}} bearing the {brand} emblem",
            $"a photo of a {{class}} with {possessive} logo",
            $"a photo of a {{class}} with the {brand} mark",
            $"a photo of a {{class}} with the {brand} trademark",
            $"a photo of a {{class}} with a {brand} badge",
        ];
    }

    /// <summary>One paraphrase per non-blank line; lines starting with # are comments.</summary>
    public static IReadOnlyList<string> LoadFile(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: paraphrases file not found.", path);
        var lines = File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        if (lines.Count == 0) throw new InvalidDataException($"{path}: no paraphrases (one per line; # starts a comment).");
        return lines;
    }
}
