using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Excise.Serialization;

namespace Excise.Text;

/// <summary>One content token of CLIP tokenization: its id, its string in the byte-level alphabet, and the
/// end-exclusive UTF-16 span of the original text it came from.</summary>
public readonly record struct ClipToken(int Id, string Token, int Start, int End);

/// <summary>
/// CLIP's byte-level BPE tokenizer, equal to Hugging Face's slow <c>CLIPTokenizer</c> (transformers 4.46, without
/// ftfy) as Stable Diffusion pipelines call it: <c>tokenizer(text, padding="max_length", max_length=77, truncation=True)</c>.
/// Literal added tokens (&lt;|startoftext|&gt;, &lt;|endoftext|&gt;, …) are split off first; the rest is cleaned and
/// lower-cased like BERT's BasicTokenizer, cut into words by the CLIP pattern (<see cref="ClipPreTokenizer"/>), and each
/// word's UTF-8 bytes are mapped to GPT-2's printable byte alphabet and merged by rank with "&lt;/w&gt;" on the last symbol.
/// Output layout: &lt;|startoftext|&gt; content… &lt;|endoftext|&gt; pad…; truncation keeps the first maxLength − 2
/// content tokens, so the end token always stays. Token type ids are all 0.
/// </summary>
public sealed class ClipTokenizer : ITokenizer
{
    public const string VocabularyFile = "vocab.json";
    public const string MergesFile = "merges.txt";
    public const string ConfigFile = "tokenizer_config.json";
    public const string SpecialTokensFile = "special_tokens_map.json";

    /// <summary>CLIP's context length, taken when tokenizer_config.json states no model_max_length.</summary>
    public const int ContextLength = 77;

    private const string EndOfWord = "</w>";
    // merges.txt lines after the header that CLIPTokenizer reads: 49152 − 256 − 2; later lines are ignored, as there.
    private const int MaxMerges = 49152 - 256 - 2;
    // Words whose BPE result is kept; beyond this many distinct words the cache stops growing (results stay exact).
    private const int CacheCapacity = 50_000;

    private static readonly string[] ByteSymbols = BytesToUnicode();

    private readonly Dictionary<string, int> vocabulary;
    private readonly Dictionary<int, string> tokensById;
    private readonly Dictionary<(string Left, string Right), int> mergeRanks;
    private readonly Dictionary<string, int> addedTokens;
    private readonly ConcurrentDictionary<string, string[]> bpeCache = new(StringComparer.Ordinal);

    public string Id { get; }
    public int StartId { get; }
    public int EndId { get; }
    public int PaddingId { get; }
    public int UnknownId { get; }
    public int ModelMaxLength { get; }
    public int VocabularySize => vocabulary.Count;
    public int MergeCount => mergeRanks.Count;

    private ClipTokenizer(Dictionary<string, int> vocabulary, Dictionary<(string, string), int> mergeRanks,
        Dictionary<string, int> addedTokens, (int Start, int End, int Padding, int Unknown) specials, int modelMaxLength,
        string digest)
    {
        this.vocabulary = vocabulary;
        this.mergeRanks = mergeRanks;
        this.addedTokens = addedTokens;
        tokensById = new Dictionary<int, string>(vocabulary.Count + addedTokens.Count);
        foreach (var (token, id) in vocabulary) tokensById[id] = token;
        foreach (var (token, id) in addedTokens) tokensById[id] = token;
        (StartId, EndId, PaddingId, UnknownId) = specials;
        ModelMaxLength = modelMaxLength;
        Id = $"clip-bpe (vocab {vocabulary.Count} tokens, {mergeRanks.Count} merges, sha256 {digest[..12]})";
    }

    /// <summary>
    /// Reads a Hugging Face tokenizer folder (a Stable Diffusion pipeline's tokenizer/): vocab.json, merges.txt and
    /// tokenizer_config.json, and special_tokens_map.json when present (its entries win, as in from_pretrained).
    /// A missing or malformed file, a merges line that is not two symbols, or a special token the vocabulary lacks is an
    /// <see cref="InvalidDataException"/> naming the file (and line or key).
    /// </summary>
    public static ClipTokenizer FromFolder(string folder)
    {
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"{folder}: no such tokenizer folder (expected {VocabularyFile}, {MergesFile}, {ConfigFile}).");
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

        byte[] Read(string name)
        {
            var path = Path.Combine(folder, name);
            if (!File.Exists(path))
                throw new InvalidDataException($"{path}: missing; a CLIP tokenizer folder holds {VocabularyFile}, {MergesFile} and {ConfigFile}.");
            var bytes = File.ReadAllBytes(path);
            hash.AppendData(Encoding.UTF8.GetBytes(name + "\n"));
            hash.AppendData(bytes);
            return bytes;
        }

        var vocabularyPath = Path.Combine(folder, VocabularyFile);
        var vocabulary = ParseVocabulary(Read(VocabularyFile), vocabularyPath);
        var mergeRanks = ParseMerges(Read(MergesFile), Path.Combine(folder, MergesFile));
        var configPath = Path.Combine(folder, ConfigFile);
        using var config = ParseObject(Read(ConfigFile), configPath);
        var specialsPath = Path.Combine(folder, SpecialTokensFile);
        using var specialsMap = File.Exists(specialsPath) ? ParseObject(Read(SpecialTokensFile), specialsPath) : null;

        var root = config.RootElement;
        if (root.TryGetProperty("tokenizer_class", out var tokenizerClass)
            && tokenizerClass.ValueKind == JsonValueKind.String
            && tokenizerClass.GetString() is not ("CLIPTokenizer" or "CLIPTokenizerFast"))
            throw new InvalidDataException(
                $"{configPath}: tokenizer_class is '{tokenizerClass.GetString()}'; only CLIPTokenizer (or CLIPTokenizerFast) is supported.");

        var addedTokens = ParseAddedTokens(root, configPath);

        (string Content, string File) SpecialToken(string key, string fallback)
        {
            foreach (var (document, path) in new[] { (specialsMap, specialsPath), (config, configPath) })
            {
                if (document is null || !document.RootElement.TryGetProperty(key, out var value)) continue;
                var content = value.ValueKind switch
                {
                    JsonValueKind.String => value.GetString(),
                    JsonValueKind.Object when value.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String
                        => c.GetString(),
                    _ => null,
                };
                return (content ?? throw new InvalidDataException(
                    $"{path}: {key} is {value.GetRawText()}; expected the token as a string or an object with a \"content\" string."), path);
            }
            return (fallback, configPath);
        }

        int SpecialId(string key, string fallback)
        {
            var (content, path) = SpecialToken(key, fallback);
            if (addedTokens.TryGetValue(content, out int id) || vocabulary.TryGetValue(content, out id)) return id;
            throw new InvalidDataException(
                $"{path}: {key} '{content}' is neither in {VocabularyFile} nor in added_tokens_decoder; not the tokenizer these files belong to.");
        }

        var specials = (
            Start: SpecialId("bos_token", ClipPreTokenizer.StartOfText),
            End: SpecialId("eos_token", ClipPreTokenizer.EndOfText),
            Padding: SpecialId("pad_token", ClipPreTokenizer.EndOfText),
            Unknown: SpecialId("unk_token", ClipPreTokenizer.EndOfText));
        // As in transformers, the special tokens are added tokens too: a literal one in the text is split off whole.
        foreach (var key in new[] { "bos_token", "eos_token", "pad_token", "unk_token" })
        {
            var content = SpecialToken(key, key == "bos_token" ? ClipPreTokenizer.StartOfText : ClipPreTokenizer.EndOfText).Content;
            if (!addedTokens.ContainsKey(content)) addedTokens[content] = vocabulary[content];
        }

        int modelMaxLength = ContextLength;
        if (root.TryGetProperty("model_max_length", out var maxLength))
        {
            if (maxLength.ValueKind != JsonValueKind.Number || !maxLength.TryGetInt32(out modelMaxLength) || modelMaxLength < 2)
                throw new InvalidDataException($"{configPath}: model_max_length is {maxLength.GetRawText()}; expected a whole number of tokens (77 for CLIP).");
        }

        return new ClipTokenizer(vocabulary, mergeRanks, addedTokens, specials, modelMaxLength,
            Digest.Hex(hash.GetHashAndReset()));
    }

    public TokenizedText Tokenize(string text, int maxLength)
    {
        ArgumentNullException.ThrowIfNull(text);
        return TokenizedText.Frame(Encode(text).Select(t => (t.Id, t.Token, t.Start, t.End)).ToList(), maxLength,
                                   StartId, EndId, PaddingId, id => tokensById[id]);
    }

    /// <summary>The content tokens of a text (no start or end token), neither truncated nor padded.</summary>
    public IReadOnlyList<ClipToken> Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var tokens = new List<ClipToken>();
        foreach (var word in Words(text))
        {
            if (word.IsAddedToken)
            {
                tokens.Add(new ClipToken(addedTokens[word.Text], word.Text, word.Spans[0].Start, word.Spans[^1].End));
                continue;
            }
            AppendBpeTokens(word, tokens);
        }
        return tokens;
    }

    /// <summary>The words BPE runs on (after the added-token split, cleaning and the CLIP pattern), a debugging aid.</summary>
    public IReadOnlyList<string> PreTokenize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return Words(text).Select(w => w.Text).ToArray();
    }

    // PreTrainedTokenizer.tokenize: the added-tokens trie splits the raw text (case-sensitive, leftmost then longest);
    // none of CLIP's added tokens strips whitespace around itself (FromFolder refuses those that would).
    private List<ClipWord> Words(string text)
    {
        var words = new List<ClipWord>();
        int pieceStart = 0;
        for (int i = 0; i < text.Length;)
        {
            string? match = null;
            foreach (var token in addedTokens.Keys)
                if (token.Length > (match?.Length ?? 0) && text.AsSpan(i).StartsWith(token, StringComparison.Ordinal))
                    match = token;
            if (match is null) { i++; continue; }
            ClipPreTokenizer.AppendWords(text, pieceStart, i, words);
            words.Add(new ClipWord(match, Enumerable.Repeat((i, i + match.Length), match.Length).ToArray(), IsAddedToken: true));
            i += match.Length;
            pieceStart = i;
        }
        ClipPreTokenizer.AppendWords(text, pieceStart, text.Length, words);
        return words;
    }

    private void AppendBpeTokens(ClipWord word, List<ClipToken> tokens)
    {
        // Which rune (by its first UTF-16 index in the word) each UTF-8 byte of the word belongs to.
        var byteOwners = new List<int>(word.Text.Length * 2);
        for (int i = 0; i < word.Text.Length;)
        {
            Rune.DecodeFromUtf16(word.Text.AsSpan(i), out var rune, out int length);
            for (int b = 0; b < rune.Utf8SequenceLength; b++) byteOwners.Add(i);
            i += length;
        }

        int nextByte = 0;
        foreach (var token in Bpe(word.Text))
        {
            int symbolBytes = token.EndsWith(EndOfWord, StringComparison.Ordinal) ? token.Length - EndOfWord.Length : token.Length;
            int first = byteOwners[nextByte], last = byteOwners[nextByte + symbolBytes - 1];
            nextByte += symbolBytes;
            int id = vocabulary.TryGetValue(token, out int known) ? known : UnknownId;
            tokens.Add(new ClipToken(id, token, word.Spans[first].Start, word.Spans[last].End));
        }
    }

    // CLIPTokenizer.bpe: byte symbols with "</w>" on the last, then repeatedly merge every occurrence (left to right)
    // of the adjacent pair of lowest rank, until no adjacent pair has a rank. The two CLIP specials map to themselves.
    private string[] Bpe(string word)
    {
        if (word is ClipPreTokenizer.StartOfText or ClipPreTokenizer.EndOfText) return [word];
        if (bpeCache.TryGetValue(word, out var cached)) return cached;

        var bytes = Encoding.UTF8.GetBytes(word);
        var symbols = new List<string>(bytes.Length);
        foreach (byte b in bytes) symbols.Add(ByteSymbols[b]);
        symbols[^1] += EndOfWord;

        while (symbols.Count > 1)
        {
            int bestRank = int.MaxValue;
            (string Left, string Right) best = default;
            for (int i = 0; i + 1 < symbols.Count; i++)
                if (mergeRanks.TryGetValue((symbols[i], symbols[i + 1]), out int rank) && rank < bestRank)
                    (bestRank, best) = (rank, (symbols[i], symbols[i + 1]));
            if (bestRank == int.MaxValue) break;

            var merged = new List<string>(symbols.Count);
            for (int i = 0; i < symbols.Count;)
            {
                if (i + 1 < symbols.Count && symbols[i] == best.Left && symbols[i + 1] == best.Right)
                {
                    merged.Add(best.Left + best.Right);
                    i += 2;
                }
                else merged.Add(symbols[i++]);
            }
            symbols = merged;
        }

        var result = symbols.ToArray();
        if (bpeCache.Count < CacheCapacity) bpeCache.TryAdd(word, result);
        return result;
    }

    // GPT-2's bytes_to_unicode: printable bytes stand for themselves, the other 68 map to U+0100 onwards in byte order.
    private static string[] BytesToUnicode()
    {
        var symbols = new string[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            symbols[b] = ((char)(printable ? b : next++)).ToString();
        }
        return symbols;
    }

    private static JsonDocument ParseObject(byte[] bytes, string path)
    {
        JsonDocument document;
        try { document = JsonDocument.Parse(bytes); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON ({e.Message})", e); }
        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            document.Dispose();
            throw new InvalidDataException($"{path}: expected a JSON object at the top level.");
        }
        return document;
    }

    private static Dictionary<string, int> ParseVocabulary(byte[] bytes, string path)
    {
        using var document = ParseObject(bytes, path);
        var vocabulary = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var entry in document.RootElement.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out int id) || id < 0)
                throw new InvalidDataException($"{path}: token '{entry.Name}' maps to {entry.Value.GetRawText()}, not a token id.");
            vocabulary[entry.Name] = id; // A repeated key: the last one wins, as in Python's json.load.
        }
        if (vocabulary.Count == 0) throw new InvalidDataException($"{path}: the vocabulary is empty.");
        return vocabulary;
    }

    // CLIPTokenizer reads merges.read().strip().split("\n")[1:49152-256-2+1]: the first line is the "#version" header,
    // each later line one merge "left right", ranked by line order. A repeated pair takes its last rank, as dict(zip()) does.
    private static Dictionary<(string, string), int> ParseMerges(byte[] bytes, string path)
    {
        string text;
        try { text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes); }
        catch (DecoderFallbackException e) { throw new InvalidDataException($"{path}: not UTF-8 ({e.Message})", e); }
        if (text.Length > 0 && text[0] == '\uFEFF') text = text[1..];
        var lines = text.Trim().Split('\n');
        if (!lines[0].StartsWith("#version", StringComparison.Ordinal))
            throw new InvalidDataException(
                $"{path} line 1: expected the '#version: 0.2' header, found '{lines[0].TrimEnd('\r')}'; the first line is skipped, so a merge there would be lost.");

        var ranks = new Dictionary<(string, string), int>();
        for (int rank = 0; rank < Math.Min(lines.Length - 1, MaxMerges); rank++)
        {
            var line = lines[rank + 1];
            var symbols = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (symbols.Length != 2)
                throw new InvalidDataException(
                    $"{path} line {rank + 2}: expected two symbols separated by a space (a merge such as 'h o'), found '{line.TrimEnd('\r')}'.");
            ranks[(symbols[0], symbols[1])] = rank;
        }
        return ranks;
    }

    // added_tokens_decoder: {"id": {"content": …, "lstrip": …, "rstrip": …, "single_word": …, …}}.
    private static Dictionary<string, int> ParseAddedTokens(JsonElement config, string path)
    {
        var added = new Dictionary<string, int>(StringComparer.Ordinal);
        if (!config.TryGetProperty("added_tokens_decoder", out var decoder)) return added;
        if (decoder.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{path}: added_tokens_decoder is {decoder.ValueKind}, expected an object of id → token.");
        foreach (var entry in decoder.EnumerateObject())
        {
            if (!int.TryParse(entry.Name, out int id) || id < 0
                || entry.Value.ValueKind != JsonValueKind.Object
                || !entry.Value.TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.String)
                throw new InvalidDataException($"{path}: added_tokens_decoder entry '{entry.Name}' is not an id with a token object holding \"content\".");
            foreach (var flag in new[] { "lstrip", "rstrip", "single_word" })
                if (entry.Value.TryGetProperty(flag, out var value) && value.ValueKind == JsonValueKind.True)
                    throw new InvalidDataException(
                        $"{path}: added token '{content.GetString()}' sets {flag}, which this tokenizer does not implement (CLIP's own tokens do not).");
            added[content.GetString()!] = id;
        }
        return added;
    }
}
