using Excise.Text;

namespace Excise.Projection;

/// <summary>Maps a concept's character spans in a prompt to the token positions that encode it.</summary>
public static class ConceptTokenLocator
{
    /// <summary>
    /// Positions (in the padded sequence the encoder sees) of real tokens whose character offsets overlap any of the
    /// prompt's concept spans. WordPiece pieces of a split word ("ac", "##me") each overlap and are all included;
    /// special tokens have empty offsets and never match.
    /// </summary>
    public static IReadOnlyList<int> Positions(TokenizedText tokens, ConceptPrompt prompt)
    {
        var positions = new List<int>();
        for (int i = 0; i < tokens.RealLength; i++)
        {
            var (start, end) = tokens.Offsets[i];
            if (end <= start) continue;
            if (prompt.Spans.Any(s => start < s.Start + s.Length && end > s.Start)) positions.Add(i);
        }
        return positions;
    }

    /// <summary>Tokenizes the prompt and locates the concept; fails when truncation cut the concept off entirely.</summary>
    public static IReadOnlyList<int> Positions(ITokenizer tokenizer, ConceptPrompt prompt, int maxLength)
    {
        var tokens = tokenizer.Tokenize(prompt.Text, maxLength);
        var positions = Positions(tokens, prompt);
        if (positions.Count == 0)
            throw new ArgumentException(
                $"Prompt \"{prompt.Text}\": no token of the concept \"{prompt.Concept}\" is within the encoder's {maxLength} tokens " +
                $"(the prompt needs {tokens.UntruncatedLength}); shorten the prompt or raise the max length.");
        return positions;
    }
}
