using System.Text.Json;
using System.Text.RegularExpressions;
using Excise.Text;
using Microsoft.ML.Tokenizers;

namespace Excise.Tests.Text;

/// <summary>
/// The CLIP tokenizer against Hugging Face's slow CLIPTokenizer (tests/golden/clip-tokenizer.cases.json: 62 strings,
/// transformers 4.46 without ftfy), plus the failure modes a golden case would not show.
/// </summary>
public class ClipTokenizerTests
{
    private static readonly string Folder = Path.Combine(RepositoryPaths.Root, "tests", "golden", "clip-tokenizer");
    private static readonly ClipTokenizer Tokenizer = ClipTokenizer.FromFolder(Folder);

    public sealed record GoldenCase(
        string Name, string Text, string What, long[] InputIds, long[] AttentionMask, int[] IdsUnpadded,
        string[] TokensUnpadded, string[] PreBpeWords, bool Truncated);

    private static readonly Lazy<Dictionary<string, GoldenCase>> Cases = new(() =>
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(
            Path.Combine(RepositoryPaths.Root, "tests", "golden", "clip-tokenizer.cases.json")));
        T[] Array<T>(JsonElement e, string key) => e.GetProperty(key).Deserialize<T[]>()!;
        return document.RootElement.GetProperty("cases").EnumerateArray().Select(c => new GoldenCase(
                c.GetProperty("name").GetString()!, c.GetProperty("text").GetString()!, c.GetProperty("what").GetString()!,
                Array<long>(c, "input_ids"), Array<long>(c, "attention_mask"), Array<int>(c, "ids_unpadded"),
                Array<string>(c, "tokens_unpadded"), Array<string>(c, "pre_bpe_words"), c.GetProperty("truncated").GetBoolean()))
            .ToDictionary(c => c.Name);
    });

    public static TheoryData<string> CaseNames() => new(Cases.Value.Keys);

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Every_golden_case_gives_Hugging_Face_ids_mask_tokens_and_words(string name)
    {
        var golden = Cases.Value[name];

        var padded = Tokenizer.Tokenize(golden.Text, 77);
        var content = Tokenizer.Encode(golden.Text);

        Assert.Equal(golden.PreBpeWords, Tokenizer.PreTokenize(golden.Text));
        string[] tokens = ["<|startoftext|>", .. content.Select(t => t.Token), "<|endoftext|>"];
        int[] ids = [Tokenizer.StartId, .. content.Select(t => t.Id), Tokenizer.EndId];
        Assert.Equal(golden.TokensUnpadded, tokens);
        Assert.Equal(golden.IdsUnpadded, ids);
        Assert.Equal(golden.InputIds, padded.InputIds);
        Assert.Equal(golden.AttentionMask, padded.AttentionMask);
        Assert.Equal(golden.Truncated, padded.Truncated);
    }

    [Fact]
    public void The_golden_folder_gives_the_special_ids_and_length_of_its_config()
    {
        Assert.Equal(1112, Tokenizer.StartId);
        Assert.Equal(1113, Tokenizer.EndId);
        Assert.Equal(1113, Tokenizer.PaddingId);
        Assert.Equal(1113, Tokenizer.UnknownId);
        Assert.Equal(77, Tokenizer.ModelMaxLength);
        Assert.Equal(1114, Tokenizer.VocabularySize);
        Assert.Equal(600, Tokenizer.MergeCount);
        Assert.StartsWith("clip-bpe (vocab 1114 tokens, 600 merges, sha256 ", Tokenizer.Id);
    }

    [Fact]
    public void A_long_caption_is_cut_to_77_tokens_ending_with_the_end_token()
    {
        var golden = Cases.Value["very_long"];
        var t = Tokenizer.Tokenize(golden.Text, 77);

        Assert.Equal(77, t.InputIds.Length);
        Assert.Equal(Tokenizer.StartId, t.InputIds[0]);
        Assert.Equal(Tokenizer.EndId, t.InputIds[76]);
        Assert.Equal("<|endoftext|>", t.Tokens[76]);
        Assert.Equal(golden.IdsUnpadded.Skip(1).Take(75).Select(id => (long)id), t.InputIds.Skip(1).Take(75));
        Assert.All(t.AttentionMask, m => Assert.Equal(1L, m));
        Assert.True(t.Truncated);
        Assert.Equal(77, t.RealLength);
        Assert.Equal(golden.IdsUnpadded.Length, t.UntruncatedLength);
    }

    [Fact]
    public void Exactly_75_content_tokens_fit_and_76_are_truncated()
    {
        Assert.False(Tokenizer.Tokenize(Cases.Value["exact_75"].Text, 77).Truncated);
        var cut = Tokenizer.Tokenize(Cases.Value["exact_76"].Text, 77);
        Assert.True(cut.Truncated);
        Assert.Equal(Tokenizer.EndId, cut.InputIds[76]);
    }

    [Fact]
    public void A_short_caption_is_padded_with_the_pad_token_and_masked()
    {
        var t = Tokenizer.Tokenize("a photo of a coat", 12);

        Assert.Equal(["<|startoftext|>", "a</w>", "photo</w>", "of</w>", "a</w>", "coat</w>", "<|endoftext|>"],
            t.Tokens.Take(t.RealLength));
        Assert.Equal(7, t.RealLength);
        Assert.Equal([1L, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0], t.AttentionMask);
        Assert.All(t.InputIds.Skip(7), id => Assert.Equal(Tokenizer.PaddingId, id));
        Assert.All(t.TokenTypeIds, id => Assert.Equal(0L, id));
        Assert.Equal(12, t.Tokens.Count);
        Assert.Equal(12, t.Offsets.Count);
    }

    [Fact]
    public void A_word_that_needs_ten_merges_becomes_the_one_token_they_build()
    {
        // photography</w> is the end of a chain of 10 merges (ph, pho, phot, …); a BPE that stops early, merges in
        // file order instead of by the rank of the pair present, or forgets </w> leaves several pieces.
        var tokens = Tokenizer.Encode("Photography");
        Assert.Equal(["photography</w>"], tokens.Select(t => t.Token));
        Assert.Equal((0, 11), (tokens[0].Start, tokens[0].End));

        // Without the end of the word the last merge (…y</w>) cannot happen: a longer word splits differently.
        Assert.NotEqual(["photography</w>"], Tokenizer.Encode("photographyx").Select(t => t.Token));
    }

    [Fact]
    public void Offsets_are_spans_of_the_original_text()
    {
        const string text = "A Photo of the ACME logo,\u200B café";
        var t = Tokenizer.Tokenize(text, 32);

        var spans = Enumerable.Range(1, t.RealLength - 2)
            .Select(i => (t.Tokens[i], text[t.Offsets[i].Start..t.Offsets[i].End])).ToArray();
        Assert.Equal(
        [
            ("a</w>", "A"), ("photo</w>", "Photo"), ("of</w>", "of"), ("the</w>", "the"), ("acme</w>", "ACME"),
            ("logo</w>", "logo"), (",</w>", ","), ("cafÃ©</w>", "café"),
        ], spans);
        Assert.Equal((0, 0), t.Offsets[0]);
        Assert.Equal((0, 0), t.Offsets[t.RealLength - 1]);
        Assert.Equal((0, 0), t.Offsets[t.RealLength]);
    }

    [Fact]
    public void A_composed_accent_and_a_split_emoji_keep_spans_that_cover_them()
    {
        // e + U+0301 is composed to é by NFC: the token covers both chars. An emoji whose bytes BPE leaves in several
        // tokens gives each of them the emoji's span.
        const string text = "cafe\u0301 🦖";
        var tokens = Tokenizer.Encode(text);

        Assert.Equal(("cafÃ©</w>", 0, 5), (tokens[0].Token, tokens[0].Start, tokens[0].End));
        Assert.True(tokens.Count > 2);
        Assert.All(tokens.Skip(1), token => Assert.Equal((6, 8), (token.Start, token.End)));
    }

    [Fact]
    public void A_literal_end_token_in_the_text_is_its_own_id_with_its_span()
    {
        const string text = "a dress<|endoftext|>";
        var tokens = Tokenizer.Encode(text);

        Assert.Equal(Tokenizer.EndId, tokens[^1].Id);
        Assert.Equal((7, 20), (tokens[^1].Start, tokens[^1].End));
    }

    [Fact]
    public void Too_short_a_max_length_is_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Tokenizer.Tokenize("a coat", 1));
    }

    // ---- bad tokenizer folders ----

    private static TempDir CopyOfGoldenFolder()
    {
        var dir = new TempDir();
        foreach (var file in Directory.GetFiles(Folder)) File.Copy(file, dir.File(Path.GetFileName(file)));
        return dir;
    }

    [Fact]
    public void A_malformed_merges_line_is_refused_naming_the_file_and_line()
    {
        using var dir = CopyOfGoldenFolder();
        var lines = File.ReadAllLines(dir.File("merges.txt"));
        lines[4] = "p hot o";
        File.WriteAllLines(dir.File("merges.txt"), lines);

        var e = Assert.Throws<InvalidDataException>(() => ClipTokenizer.FromFolder(dir.Path));
        Assert.Contains("merges.txt line 5", e.Message);
        Assert.Contains("'p hot o'", e.Message);
    }

    [Fact]
    public void A_merges_file_without_its_version_header_is_refused()
    {
        using var dir = CopyOfGoldenFolder();
        File.WriteAllLines(dir.File("merges.txt"), File.ReadAllLines(dir.File("merges.txt")).Skip(1));

        var e = Assert.Throws<InvalidDataException>(() => ClipTokenizer.FromFolder(dir.Path));
        Assert.Contains("merges.txt line 1", e.Message);
    }

    [Fact]
    public void A_missing_vocabulary_is_refused_naming_the_file()
    {
        using var dir = CopyOfGoldenFolder();
        File.Delete(dir.File("vocab.json"));

        var e = Assert.Throws<InvalidDataException>(() => ClipTokenizer.FromFolder(dir.Path));
        Assert.Contains(dir.File("vocab.json"), e.Message);
        Assert.Contains("missing", e.Message);
    }

    [Fact]
    public void A_missing_folder_is_refused_naming_it()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<DirectoryNotFoundException>(() => ClipTokenizer.FromFolder(dir.File("nowhere")));
        Assert.Contains("nowhere", e.Message);
    }

    [Fact]
    public void Malformed_JSON_is_refused_naming_the_file()
    {
        using var dir = CopyOfGoldenFolder();
        File.WriteAllText(dir.File("vocab.json"), "{\"a\": 1,");

        var e = Assert.Throws<InvalidDataException>(() => ClipTokenizer.FromFolder(dir.Path));
        Assert.Contains("vocab.json: not valid JSON", e.Message);
    }

    [Fact]
    public void A_vocabulary_entry_that_is_not_an_id_is_refused_naming_the_token()
    {
        using var dir = CopyOfGoldenFolder();
        File.WriteAllText(dir.File("vocab.json"), "{\"a\": 1, \"b\": \"two\"}");

        var e = Assert.Throws<InvalidDataException>(() => ClipTokenizer.FromFolder(dir.Path));
        Assert.Contains("vocab.json: token 'b'", e.Message);
    }

    [Fact]
    public void A_special_token_the_vocabulary_lacks_is_refused_naming_the_file_and_key()
    {
        using var dir = CopyOfGoldenFolder();
        File.WriteAllText(dir.File("special_tokens_map.json"), "{\"pad_token\": \"<|pad|>\"}");

        var e = Assert.Throws<InvalidDataException>(() => ClipTokenizer.FromFolder(dir.Path));
        Assert.Contains("special_tokens_map.json: pad_token '<|pad|>'", e.Message);
    }

    [Fact]
    public void A_pad_token_of_the_vocabulary_is_used_for_padding()
    {
        // SD 2.x tokenizers pad with "!" (id 0) instead of the end token.
        using var dir = CopyOfGoldenFolder();
        File.WriteAllText(dir.File("special_tokens_map.json"), "{\"pad_token\": \"!\"}");
        var tokenizer = ClipTokenizer.FromFolder(dir.Path);

        var t = tokenizer.Tokenize("a coat", 6);
        Assert.Equal(Tokenizer.Tokenize("a coat", 6).InputIds.Take(4), t.InputIds.Take(4));
        Assert.Equal([0L, 0], t.InputIds[4..]);
        Assert.Equal([1L, 1, 1, 1, 0, 0], t.AttentionMask);
        Assert.Equal(0, tokenizer.PaddingId);
        Assert.Equal(Tokenizer.VocabularySize, tokenizer.VocabularySize);
        Assert.NotEqual(Tokenizer.Id, tokenizer.Id);
    }

    [Fact]
    public void Another_tokenizer_class_is_refused_naming_the_key()
    {
        using var dir = CopyOfGoldenFolder();
        var config = File.ReadAllText(dir.File("tokenizer_config.json")).Replace("\"CLIPTokenizer\"", "\"T5Tokenizer\"");
        File.WriteAllText(dir.File("tokenizer_config.json"), config);

        var e = Assert.Throws<InvalidDataException>(() => ClipTokenizer.FromFolder(dir.Path));
        Assert.Contains("tokenizer_config.json: tokenizer_class is 'T5Tokenizer'", e.Message);
    }

    // ---- Microsoft.ML.Tokenizers as a cross-check ----

    private const string ClipPattern = @"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+";

    private static BpeTokenizer LibraryTokenizer(PreTokenizer? preTokenizer, Normalizer? normalizer)
    {
        var specials = new Dictionary<string, int> { ["<|startoftext|>"] = 1112, ["<|endoftext|>"] = 1113 };
        return BpeTokenizer.Create(new BpeOptions(Path.Combine(Folder, "vocab.json"), Path.Combine(Folder, "merges.txt"))
        {
            ByteLevel = true,
            EndOfWordSuffix = "</w>",
            PreTokenizer = preTokenizer,
            Normalizer = normalizer,
            SpecialTokens = specials,
            UnknownToken = "<|endoftext|>",
        });
    }

    // Words BPE alone must get right: long repeats (overlapping pairs merge left to right), a long word, symbols, bytes.
    private static readonly string[] HostileTexts =
    [
        "aaaaaaaaa ssssss ooooooo !!!!!!!! ......", "photographyphotography accessoriesaccessories",
        "über-straße ĳssel ǆungla 🦖🦖🦖 ÿÿÿ", "<|endoftext|>x <|startoftext|><|endoftext|>",
    ];

    [Fact]
    public void Microsoft_ML_Tokenizers_BPE_gives_our_ids_on_our_words_for_every_case()
    {
        // The library's byte-level BPE with the </w> suffix, one call per word of ours (its pre-tokenizer sees the word whole).
        var library = LibraryTokenizer(new RegexPreTokenizer(new Regex("(?s).+"), null), normalizer: null);
        var mismatches = new List<string>();
        foreach (var text in Cases.Value.Values.Select(c => c.Text).Concat(HostileTexts))
        {
            var ours = Tokenizer.Encode(text).Select(t => t.Id).ToArray();
            var theirs = Tokenizer.PreTokenize(text).SelectMany(word => library.EncodeToIds(word)).ToArray();
            if (!ours.SequenceEqual(theirs)) mismatches.Add($"'{text}': ours {string.Join(' ', ours)}, library {string.Join(' ', theirs)}");
        }
        Assert.Empty(mismatches);
    }

    [Fact]
    public void Microsoft_ML_Tokenizers_alone_misses_only_the_cases_that_BasicTokenizer_cleaning_changes()
    {
        // The library's whole pipeline (CLIP pattern, lower-casing normalizer, byte-level BPE with </w>) against the golden
        // ids: it has no category-C deletion, no CJK spacing, no NFC and .NET's İ → İ. Ours exists for these cases (and
        // for offsets into the original text, which the library reports in its normalized text only).
        var library = LibraryTokenizer(
            new RegexPreTokenizer(new Regex(ClipPattern, RegexOptions.IgnoreCase | RegexOptions.CultureInvariant), null),
            new LowerCaseNormalizer());
        var differing = Cases.Value.Values
            .Where(c => !library.EncodeToIds(c.Text).SequenceEqual(c.IdsUnpadded[1..^1]))
            .Select(c => c.Name).Order().ToArray();

        Assert.Equal(
            ["accent_combining", "cjk", "control_chars", "dotted_capital_i", "emoji_zwj", "replacement_char", "vt_ff_controls",
             "zero_width_space"],
            differing);
    }
}
