using System.Text;
using System.Text.RegularExpressions;

namespace Excise.Projection;

/// <summary>
/// A prompt that mentions a concept, with the character spans (start, length) where the concept phrase occurs.
/// Spans are known by construction for templates and placeholders, and found case-insensitively for literal prompts.
/// </summary>
public sealed record ConceptPrompt(string Concept, string Text, IReadOnlyList<(int Start, int Length)> Spans)
{
    // A concept usually hangs off the sentence by one connector ("a sneaker with X", "a picture of X", "X on a bag");
    // removing the concept without it would leave a dangling "with"/"of" that itself shifts the encoding.
    static readonly string[] ConnectorsBefore = ["marked with", "printed with", "with", "bearing", "featuring", "showing", "of", "and"];
    static readonly string[] ConnectorsAfter = ["on", "and", "with"];

    /// <summary>
    /// The prompt with every occurrence of the concept removed, together with one connector word directly before it
    /// ("with", "bearing", "featuring", "showing", "marked with", "of", "and") or, failing that, directly after it
    /// ("on", "and", "with"); spaces are then collapsed and stray edge punctuation trimmed.
    /// "a sneaker with the Acme logo" → "a sneaker"; "the Acme logo on a bag" → "a bag"; "the Acme logo" → "".
    /// </summary>
    public string WithoutConcept
    {
        get
        {
            var text = Text;
            foreach (var (start, length) in Spans.OrderByDescending(s => s.Start))
            {
                int removeStart = start, removeEnd = start + length;
                var before = text[..start].TrimEnd();
                var connectorBefore = ConnectorsBefore.FirstOrDefault(c => EndsWithWord(before, c));
                if (connectorBefore is not null) removeStart = before.Length - connectorBefore.Length;
                else
                {
                    var after = text[removeEnd..];
                    var trimmedAfter = after.TrimStart();
                    var connectorAfter = ConnectorsAfter.FirstOrDefault(c => StartsWithWord(trimmedAfter, c));
                    if (connectorAfter is not null) removeEnd += after.Length - trimmedAfter.Length + connectorAfter.Length;
                }
                text = text[..removeStart] + " " + text[removeEnd..];
            }
            return Tidy(text);
        }
    }

    static bool EndsWithWord(string text, string word) =>
        text.EndsWith(word, StringComparison.OrdinalIgnoreCase)
        && (text.Length == word.Length || !char.IsLetterOrDigit(text[text.Length - word.Length - 1]));

    static bool StartsWithWord(string text, string word) =>
        text.StartsWith(word, StringComparison.OrdinalIgnoreCase)
        && (text.Length == word.Length || !char.IsLetterOrDigit(text[word.Length]));

    static string Tidy(string text)
    {
        text = Regex.Replace(text, @"\s+", " ");
        text = Regex.Replace(text, @" ([,.;:!?])", "$1");
        return text.Trim(' ', ',', ';', ':');
    }

    /// <summary>Builds a prompt by substituting <paramref name="concept"/> for every <paramref name="placeholder"/>, recording the spans.</summary>
    public static ConceptPrompt FromPlaceholder(string template, string placeholder, string concept)
    {
        var text = new StringBuilder();
        var spans = new List<(int, int)>();
        int from = 0;
        for (int at; (at = template.IndexOf(placeholder, from, StringComparison.Ordinal)) >= 0; from = at + placeholder.Length)
        {
            text.Append(template, from, at - from);
            spans.Add((text.Length, concept.Length));
            text.Append(concept);
        }
        text.Append(template, from, template.Length - from);
        return new ConceptPrompt(concept, text.ToString(), spans);
    }

    /// <summary>Finds the concept's occurrences (case-insensitive, non-overlapping) in a literal prompt; null when there are none.</summary>
    public static ConceptPrompt? FromLiteral(string text, string concept)
    {
        var spans = new List<(int, int)>();
        for (int at, from = 0; (at = text.IndexOf(concept, from, StringComparison.OrdinalIgnoreCase)) >= 0; from = at + concept.Length)
            spans.Add((at, concept.Length));
        return spans.Count > 0 ? new ConceptPrompt(concept, text, spans) : null;
    }
}
