using Excise.Data;
using Excise.Text;

namespace Excise.Attacks;

/// <summary>
/// A textual-inversion prompt: the template with its class filled in and <c>&lt;*&gt;</c> spelt as the placeholder
/// word (once per learned vector), plus the token positions whose encoder states the learned vectors replace.
/// </summary>
public sealed record PlaceholderPrompt(string Text, string Display, int[] Positions)
{
    /// <summary>The class noun a template's {class} takes: the Fashion-MNIST caption noun, or "garment" for other labels.</summary>
    public static string NounFor(int? label) => label is >= 0 and < FashionMnistClasses.Count ? FashionMnistClasses.CaptionNounOf(label.Value) : "garment";

    public static PlaceholderPrompt Build(InversionSettings settings, int? classLabel, ITokenizer tokenizer, int maxLength)
    {
        var filled = settings.Template.Replace(AttackPrompts.ClassPlaceholder, NounFor(classLabel), StringComparison.Ordinal);
        int at = filled.IndexOf(InversionSettings.Token, StringComparison.Ordinal);
        string before = filled[..at], after = filled[(at + InversionSettings.Token.Length)..];
        string words = string.Join(' ', Enumerable.Repeat(settings.PlaceholderWord, settings.Vectors));
        string text = Articles.Fix(before + words + after);
        string display = Articles.Fix(before + InversionSettings.Token + after);

        // Articles.Fix only rewrites whole words "a"/"an", so the placeholder stays the same number of words in;
        // its character offset is recomputed from the fixed words before it.
        var beforeWords = before.Split(' ');
        var fixedWords = text.Split(' ');
        int wordIndex = beforeWords.Length - 1;
        int start = fixedWords.Take(wordIndex).Sum(w => w.Length + 1) + beforeWords[^1].Length;
        int end = start + words.Length;

        var tokens = tokenizer.Tokenize(text, maxLength);
        var positions = Enumerable.Range(0, tokens.RealLength)
            .Where(t => tokens.Offsets[t].End > tokens.Offsets[t].Start && tokens.Offsets[t].Start >= start && tokens.Offsets[t].End <= end)
            .ToArray();
        if (positions.Length != settings.Vectors)
            throw new ArgumentException(
                $"inversion: the placeholder word '{settings.PlaceholderWord}' must be exactly one token per learned vector; in \"{text}\" it spans " +
                $"{positions.Length} token(s) for {settings.Vectors} vector(s){(tokens.Truncated ? " (the prompt was truncated)" : "")}. Choose a common single-token word.");
        return new PlaceholderPrompt(text, display, positions);
    }
}
