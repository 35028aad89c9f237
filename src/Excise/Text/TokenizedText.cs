namespace Excise.Text;

/// <summary>
/// One text, tokenized and padded/truncated to a fixed length.
/// All arrays and lists have exactly the requested max length, so index i of <see cref="Tokens"/>
/// and <see cref="Offsets"/> lines up with position i of the encoder's states; padding positions hold
/// the tokenizer's pad token and the offset (0,0).
/// <see cref="Offsets"/> are end-exclusive UTF-16 spans into the ORIGINAL text; special tokens get (0,0).
/// </summary>
public sealed record TokenizedText(
    long[] InputIds,
    long[] AttentionMask,
    long[] TokenTypeIds,
    IReadOnlyList<string> Tokens,
    IReadOnlyList<(int Start, int End)> Offsets)
{
    /// <summary>Number of real (unpadded) positions, special tokens included.</summary>
    public int RealLength { get; init; }

    /// <summary>Real length the text would have needed without truncation, special tokens included.</summary>
    public int UntruncatedLength { get; init; }

    /// <summary>True when content tokens were dropped to fit the max length.</summary>
    public bool Truncated => UntruncatedLength > RealLength;

    public int MaxLength => InputIds.Length;
}

public interface ITokenizer
{
    /// <summary>Identifies vocabulary and rules; part of cache keys, so it changes when tokenization would.</summary>
    string Id { get; }

    TokenizedText Tokenize(string text, int maxLength);
}
