using System.Globalization;
using System.Text;

namespace Excise.Text;

/// <summary>
/// A word of CLIP pre-tokenization: its text after cleaning and lower-casing and, per UTF-16 char of it, the
/// end-exclusive span of the original text it came from. An added token (a literal &lt;|endoftext|&gt;) is one word.
/// </summary>
internal sealed record ClipWord(string Text, (int Start, int End)[] Spans, bool IsAddedToken);

/// <summary>
/// What Hugging Face's slow <c>CLIPTokenizer._tokenize</c> does to text before byte-level BPE when ftfy is not
/// installed (the path the golden cases were made on; transformers 4.46): BERT's <c>BasicTokenizer(do_lower_case=True,
/// strip_accents=False, do_split_on_punc=False)</c> cleaning, then <c>re.findall</c> of the CLIP pattern
/// <c>&lt;\|startoftext\|&gt;|&lt;\|endoftext\|&gt;|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+</c> (IGNORECASE).
/// The pattern is scanned by hand, rune by rune: .NET's Regex matches UTF-16 units, so a letter or digit outside the
/// BMP (𝐀, 𝟏) would fall into the symbol alternative, where Python's regex module sees a letter.
/// </summary>
internal static class ClipPreTokenizer
{
    public const string StartOfText = "<|startoftext|>";
    public const string EndOfText = "<|endoftext|>";

    // The pattern's contractions after the apostrophe, in its order (only the ASCII apostrophe U+0027).
    private static readonly string[] Contractions = ["s", "t", "re", "ve", "m", "ll", "d"];

    /// <summary>Appends the words of text[start..end), a piece that holds no added token.</summary>
    public static void AppendWords(string text, int start, int end, List<ClipWord> words)
    {
        foreach (var (piece, spans) in CleanedPieces(text, start, end))
            Scan(piece, spans, words);
    }

    // BasicTokenizer.tokenize: _clean_text (drop NUL, U+FFFD and category C except \t\n\r; whitespace → " "),
    // _tokenize_chinese_chars (spaces around CJK ideographs), NFC, str.split(), str.lower() per piece.
    private static List<(string Text, (int Start, int End)[] Spans)> CleanedPieces(string text, int start, int end)
    {
        var pieces = new List<(string, (int, int)[])>();
        var runes = new List<(Rune Rune, int Start, int End)>();

        void EndPiece()
        {
            if (runes.Count == 0) return;
            pieces.Add(Normalized(runes));
            runes.Clear();
        }

        for (int index = start; index < end;)
        {
            // A lone surrogate decodes as U+FFFD and is dropped, as Python drops it (category Cs).
            Rune.DecodeFromUtf16(text.AsSpan(index, end - index), out var rune, out int length);
            int runeStart = index;
            index += length;

            if (rune.Value == 0 || rune == Rune.ReplacementChar || IsControl(rune)) continue;
            if (IsSeparator(rune)) { EndPiece(); continue; }
            if (IsCjkIdeograph(rune.Value))
            {
                EndPiece();
                runes.Add((rune, runeStart, index));
                EndPiece();
                continue;
            }
            runes.Add((rune, runeStart, index));
        }
        EndPiece();
        return pieces;
    }

    // NFC and lower-casing of a whole piece, as Python does them. Where doing them rune by rune gives the same
    // string (all but composed accents, Hangul jamo and a final sigma), each char keeps its own rune's span;
    // otherwise every char gets the span of the whole piece.
    private static (string, (int, int)[]) Normalized(List<(Rune Rune, int Start, int End)> runes)
    {
        var original = new StringBuilder();
        foreach (var r in runes) original.Append(r.Rune.ToString());
        string exact = PythonLower(original.ToString().Normalize(NormalizationForm.FormC));

        var fine = new StringBuilder(exact.Length);
        var spans = new List<(int, int)>(exact.Length);
        foreach (var (rune, runeStart, runeEnd) in runes)
        {
            string part = PythonLower(rune.ToString().Normalize(NormalizationForm.FormC));
            fine.Append(part);
            for (int i = 0; i < part.Length; i++) spans.Add((runeStart, runeEnd));
        }
        if (fine.ToString() == exact) return (exact, spans.ToArray());
        return (exact, Enumerable.Repeat((runes[0].Start, runes[^1].End), exact.Length).ToArray());
    }

    /// <summary>
    /// Python's str.lower(): the simple lower-case mapping, plus İ → "i̇" (the one unconditional multi-char mapping)
    /// and the final-sigma rule (Σ at the end of a word → ς).
    /// </summary>
    private static string PythonLower(string text)
    {
        var lower = new StringBuilder(text.Length);
        for (int i = 0; i < text.Length;)
        {
            Rune.DecodeFromUtf16(text.AsSpan(i), out var rune, out int length);
            if (rune.Value == 0x130) lower.Append("i\u0307");
            else if (rune.Value == 0x3A3) lower.Append(IsFinalSigma(text, i, length) ? 'ς' : 'σ');
            else lower.Append(Rune.ToLowerInvariant(rune).ToString());
            i += length;
        }
        return lower.ToString();
    }

    // CPython's handle_capital_sigma: a cased letter before (skipping case-ignorables) and none after.
    private static bool IsFinalSigma(string text, int index, int length)
    {
        int before = index;
        bool casedBefore = false;
        while (before > 0)
        {
            var rune = RuneBefore(text, before, out int size);
            before -= size;
            if (IsCaseIgnorable(rune)) continue;
            casedBefore = IsCased(rune);
            break;
        }
        if (!casedBefore) return false;
        for (int after = index + length; after < text.Length;)
        {
            Rune.DecodeFromUtf16(text.AsSpan(after), out var rune, out int size);
            after += size;
            if (IsCaseIgnorable(rune)) continue;
            return !IsCased(rune);
        }
        return true;
    }

    private static Rune RuneBefore(string text, int end, out int size)
    {
        Rune.DecodeLastFromUtf16(text.AsSpan(0, end), out var rune, out size);
        return rune;
    }

    private static bool IsCased(Rune rune) =>
        Rune.GetUnicodeCategory(rune) is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter
            or UnicodeCategory.TitlecaseLetter;

    private static bool IsCaseIgnorable(Rune rune) =>
        rune.Value is '\'' or '.' or ':' or 0xB7 or 0x387 or 0x5F4 or 0x2018 or 0x2019 or 0x2024 or 0x2027
            or 0xFE13 or 0xFE52 or 0xFE55 or 0xFF07 or 0xFF0E or 0xFF1A
        || Rune.GetUnicodeCategory(rune) is UnicodeCategory.NonSpacingMark or UnicodeCategory.EnclosingMark
            or UnicodeCategory.Format or UnicodeCategory.ModifierLetter or UnicodeCategory.ModifierSymbol;

    // re.findall of the CLIP pattern over one whitespace-free piece: at each position the first alternative that
    // matches wins, and every alternative but the letter and symbol runs takes a fixed length.
    private static void Scan(string text, (int Start, int End)[] spans, List<ClipWord> words)
    {
        for (int i = 0; i < text.Length;)
        {
            Rune.DecodeFromUtf16(text.AsSpan(i), out var rune, out int length);
            int end;
            if (MatchesAt(text, i, StartOfText)) end = i + StartOfText.Length;
            else if (MatchesAt(text, i, EndOfText)) end = i + EndOfText.Length;
            else if (rune.Value == '\'' && Contraction(text, i + 1) is { } contraction) end = i + 1 + contraction.Length;
            else if (IsLetter(rune)) end = RunEnd(text, i, IsLetter);
            else if (IsNumber(rune)) end = i + length;
            else if (Rune.IsWhiteSpace(rune)) { i += length; continue; }
            else end = RunEnd(text, i, r => !IsLetter(r) && !IsNumber(r) && !Rune.IsWhiteSpace(r));
            words.Add(new ClipWord(text[i..end], spans[i..end], IsAddedToken: false));
            i = end;
        }
    }

    private static string? Contraction(string text, int index)
    {
        foreach (var contraction in Contractions)
            if (MatchesAt(text, index, contraction)) return contraction;
        return null;
    }

    private static int RunEnd(string text, int index, Func<Rune, bool> belongs)
    {
        while (index < text.Length)
        {
            Rune.DecodeFromUtf16(text.AsSpan(index), out var rune, out int length);
            if (!belongs(rune)) break;
            index += length;
        }
        return index;
    }

    // IGNORECASE compares simple case folds; among the pattern's letters only s has another fold source, ſ (U+017F).
    private static bool MatchesAt(string text, int index, string literal)
    {
        if (index + literal.Length > text.Length) return false;
        for (int k = 0; k < literal.Length; k++)
        {
            char c = text[index + k];
            if ((c == 'ſ' ? 's' : char.ToLowerInvariant(c)) != literal[k]) return false;
        }
        return true;
    }

    private static bool IsLetter(Rune rune) => Rune.IsLetter(rune);

    private static bool IsNumber(Rune rune) => Rune.GetUnicodeCategory(rune) is UnicodeCategory.DecimalDigitNumber
        or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber;

    // _is_whitespace (space, \t, \n, \r, Zs) and what str.split() also splits on that survives cleaning (Zl, Zp).
    private static bool IsSeparator(Rune rune) =>
        rune.Value is ' ' or '\t' or '\n' or '\r'
        || Rune.GetUnicodeCategory(rune) is UnicodeCategory.SpaceSeparator or UnicodeCategory.LineSeparator
            or UnicodeCategory.ParagraphSeparator;

    // _is_control: every category C* character except the three whitespace controls.
    private static bool IsControl(Rune rune)
    {
        if (rune.Value is '\t' or '\n' or '\r') return false;
        return Rune.GetUnicodeCategory(rune) is UnicodeCategory.Control or UnicodeCategory.Format
            or UnicodeCategory.OtherNotAssigned or UnicodeCategory.PrivateUse or UnicodeCategory.Surrogate;
    }

    private static bool IsCjkIdeograph(int codePoint) =>
        codePoint is >= 0x4E00 and <= 0x9FFF or >= 0x3400 and <= 0x4DBF or >= 0x20000 and <= 0x2A6DF
            or >= 0x2A700 and <= 0x2B73F or >= 0x2B740 and <= 0x2B81F or >= 0x2B820 and <= 0x2CEAF
            or >= 0xF900 and <= 0xFAFF or >= 0x2F800 and <= 0x2FA1F;
}
