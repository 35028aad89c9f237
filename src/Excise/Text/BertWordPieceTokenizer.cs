using Excise.Serialization;

namespace Excise.Text;

/// <summary>
/// BERT-uncased tokenizer: <see cref="BertPreTokenizer"/> basic tokenization, then greedy longest-match WordPiece
/// with "##" continuations; a word with any unmatched remainder, or longer than 100 characters, becomes [UNK].
/// Output layout: [CLS] pieces… [SEP] [PAD]…; token type ids are all 0 (single segment).
/// </summary>
public sealed class BertWordPieceTokenizer : ITokenizer
{
    private const string ContinuationPrefix = "##";
    private const int MaxCharsPerWord = 100;

    private readonly string[] tokensById;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> idsBySpan;

    public string Id { get; }
    public int ClassificationId { get; }
    public int SeparatorId { get; }
    public int PaddingId { get; }
    public int UnknownId { get; }

    private BertWordPieceTokenizer(string[] tokensById, string source, string vocabularyHash)
    {
        this.tokensById = tokensById;
        var ids = new Dictionary<string, int>(tokensById.Length, StringComparer.Ordinal);
        for (int id = 0; id < tokensById.Length; id++)
            ids.TryAdd(tokensById[id], id); // First occurrence wins, as in Hugging Face's load_vocab order.
        idsBySpan = ids.GetAlternateLookup<ReadOnlySpan<char>>();

        int Special(string token) => ids.TryGetValue(token, out int id)
            ? id
            : throw new InvalidDataException($"{source}: vocabulary has no {token} token; not a BERT WordPiece vocab.txt.");
        ClassificationId = Special("[CLS]");
        SeparatorId = Special("[SEP]");
        PaddingId = Special("[PAD]");
        UnknownId = Special("[UNK]");
        Id = $"bert-uncased-wordpiece (vocab {tokensById.Length} tokens, sha256 {vocabularyHash})";
    }

    /// <summary>Reads a vocab.txt (one token per line, id = line number).</summary>
    /// <param name="source">Name used in error messages (file path or resource name).</param>
    public static BertWordPieceTokenizer FromVocabulary(Stream vocabulary, string source)
    {
        using var buffer = new MemoryStream();
        vocabulary.CopyTo(buffer);
        byte[] bytes = buffer.ToArray();
        string hash = Digest.OfBytes(bytes)[..12];

        using var reader = new StreamReader(new MemoryStream(bytes));
        var tokens = new List<string>();
        while (reader.ReadLine() is { } line) tokens.Add(line.TrimEnd('\r'));
        if (tokens.Count > 0 && tokens[^1].Length == 0) tokens.RemoveAt(tokens.Count - 1);
        if (tokens.Count == 0) throw new InvalidDataException($"{source}: vocabulary is empty.");
        return new BertWordPieceTokenizer(tokens.ToArray(), source, hash);
    }

    public TokenizedText Tokenize(string text, int maxLength)
    {
        ArgumentNullException.ThrowIfNull(text);
        return TokenizedText.Frame(WordPieces(text).Select(p => (p.Id, tokensById[p.Id], p.Start, p.End)).ToList(), maxLength,
                                   ClassificationId, SeparatorId, PaddingId, id => tokensById[id]);
    }

    private readonly record struct Piece(int Id, int Start, int End);

    private List<Piece> WordPieces(string text)
    {
        var pieces = new List<Piece>();
        foreach (var word in BertPreTokenizer.SplitWords(text))
        {
            int before = pieces.Count;
            if (!TryAppendWordPieces(word, pieces))
            {
                pieces.RemoveRange(before, pieces.Count - before);
                pieces.Add(new Piece(UnknownId, word[0].Start, word[^1].End));
            }
        }
        return pieces;
    }

    private bool TryAppendWordPieces(NormalizedChar[] word, List<Piece> pieces)
    {
        if (word.Length > MaxCharsPerWord) return false;
        Span<char> wordChars = stackalloc char[word.Length];
        for (int i = 0; i < word.Length; i++) wordChars[i] = word[i].Value;
        Span<char> continuation = stackalloc char[ContinuationPrefix.Length + word.Length];
        ContinuationPrefix.CopyTo(continuation);

        for (int start = 0; start < word.Length;)
        {
            int matchedEnd = -1, matchedId = -1;
            for (int end = word.Length; end > start; end--)
            {
                scoped ReadOnlySpan<char> candidate;
                if (start == 0) candidate = wordChars[..end];
                else
                {
                    wordChars[start..end].CopyTo(continuation[ContinuationPrefix.Length..]);
                    candidate = continuation[..(ContinuationPrefix.Length + end - start)];
                }
                if (idsBySpan.TryGetValue(candidate, out matchedId)) { matchedEnd = end; break; }
            }
            if (matchedEnd < 0) return false;
            pieces.Add(new Piece(matchedId, word[start].Start, word[matchedEnd - 1].End));
            start = matchedEnd;
        }
        return true;
    }
}
