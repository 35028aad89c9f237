using System.Globalization;
using System.Text;

namespace Excise.Text;

/// <summary>A normalized character and the span of original text it came from.</summary>
internal readonly record struct NormalizedChar(char Value, int Start, int End);

/// <summary>
/// BERT "basic tokenization" for uncased models, reproducing Hugging Face's BasicTokenizer
/// (clean text, space out CJK ideographs, lowercase, strip accents, split on punctuation and whitespace),
/// but rune by rune so every normalized character keeps the span of the original text it came from.
/// Microsoft.ML.Tokenizers' BertTokenizer only reports offsets into its normalized text, which drifts from the
/// original once characters are removed or spaces inserted, hence this own implementation.
/// </summary>
internal static class BertPreTokenizer
{
    public static List<NormalizedChar[]> SplitWords(string text)
    {
        var words = new List<NormalizedChar[]>();
        var current = new List<NormalizedChar>();

        void EndWord()
        {
            if (current.Count == 0) return;
            words.Add(current.ToArray());
            current.Clear();
        }

        for (int index = 0; index < text.Length;)
        {
            Rune.DecodeFromUtf16(text.AsSpan(index), out var rune, out int length);
            int start = index, end = index + length;
            index = end;

            if (rune.Value == 0 || rune == Rune.ReplacementChar || IsControl(rune)) continue;
            if (IsWhitespace(rune)) { EndWord(); continue; }
            if (IsCjkIdeograph(rune.Value))
            {
                EndWord();
                var utf16 = rune.ToString();
                words.Add(utf16.Select(c => new NormalizedChar(c, start, end)).ToArray());
                continue;
            }

            string normalized = LowercaseWithoutAccents(rune);
            if (normalized.Length == 0)
            {
                // A lone combining mark vanishes; let the preceding character's span cover it.
                if (current.Count > 0) current[^1] = current[^1] with { End = end };
                continue;
            }
            foreach (char c in normalized)
            {
                if (IsPunctuation(c))
                {
                    EndWord();
                    words.Add([new NormalizedChar(c, start, end)]);
                }
                else current.Add(new NormalizedChar(c, start, end));
            }
        }
        EndWord();
        return words;
    }

    private static string LowercaseWithoutAccents(Rune rune)
    {
        string decomposed = Rune.ToLowerInvariant(rune).ToString().Normalize(NormalizationForm.FormD);
        var kept = new StringBuilder(decomposed.Length);
        foreach (char c in decomposed)
            if (CharUnicodeInfo.GetUnicodeCategory(c) != UnicodeCategory.NonSpacingMark) kept.Append(c);
        return kept.ToString();
    }

    private static bool IsWhitespace(Rune rune) =>
        rune.Value is ' ' or '\t' or '\n' or '\r' || Rune.GetUnicodeCategory(rune) == UnicodeCategory.SpaceSeparator;

    // Hugging Face drops every "C*" category character except the three whitespace controls.
    private static bool IsControl(Rune rune)
    {
        if (rune.Value is '\t' or '\n' or '\r') return false;
        return Rune.GetUnicodeCategory(rune) is UnicodeCategory.Control or UnicodeCategory.Format
            or UnicodeCategory.OtherNotAssigned or UnicodeCategory.PrivateUse or UnicodeCategory.Surrogate;
    }

    // BERT treats all non-alphanumeric ASCII as punctuation, even "$" or "^" that Unicode does not.
    private static bool IsPunctuation(char c)
    {
        if (c is >= '!' and <= '/' or >= ':' and <= '@' or >= '[' and <= '`' or >= '{' and <= '~') return true;
        return CharUnicodeInfo.GetUnicodeCategory(c) is UnicodeCategory.ConnectorPunctuation
            or UnicodeCategory.DashPunctuation or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation
            or UnicodeCategory.InitialQuotePunctuation or UnicodeCategory.FinalQuotePunctuation
            or UnicodeCategory.OtherPunctuation;
    }

    private static bool IsCjkIdeograph(int codePoint) =>
        codePoint is >= 0x4E00 and <= 0x9FFF or >= 0x3400 and <= 0x4DBF or >= 0x20000 and <= 0x2A6DF
            or >= 0x2A700 and <= 0x2B73F or >= 0x2B740 and <= 0x2B81F or >= 0x2B820 and <= 0x2CEAF
            or >= 0xF900 and <= 0xFAFF or >= 0x2F800 and <= 0x2FA1F;
}
