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

    /// <summary>
    /// Content tokens framed as an encoder reads them: the start token, the first maxLength − 2 content tokens (so the
    /// end token always stays), the end token, then padding; the mask marks the real positions.
    /// </summary>
    /// <param name="content">Each content token's id, its string, and its span of the original text.</param>
    /// <param name="tokenOf">The string of a special or padding id.</param>
    public static TokenizedText Frame(IReadOnlyList<(int Id, string Token, int Start, int End)> content, int maxLength,
                                      int startId, int endId, int paddingId, Func<int, string> tokenOf)
    {
        if (maxLength < 2)
            throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "Needs room for at least the start and end tokens.");
        int kept = Math.Min(content.Count, maxLength - 2);
        int realLength = kept + 2;
        var inputIds = new long[maxLength];
        var attentionMask = new long[maxLength];
        var tokens = new string[maxLength];
        var offsets = new (int Start, int End)[maxLength];
        for (int i = 0; i < maxLength; i++)
        {
            bool isContent = i > 0 && i <= kept;
            int id = isContent ? content[i - 1].Id : i == 0 ? startId : i == kept + 1 ? endId : paddingId;
            inputIds[i] = id;
            attentionMask[i] = i < realLength ? 1 : 0;
            tokens[i] = isContent ? content[i - 1].Token : tokenOf(id);
            if (isContent) offsets[i] = (content[i - 1].Start, content[i - 1].End);
        }
        return new TokenizedText(inputIds, attentionMask, new long[maxLength], tokens, offsets)
        {
            RealLength = realLength,
            UntruncatedLength = content.Count + 2,
        };
    }
}

public interface ITokenizer
{
    /// <summary>Identifies vocabulary and rules; part of cache keys, so it changes when tokenization would.</summary>
    string Id { get; }

    TokenizedText Tokenize(string text, int maxLength);
}
