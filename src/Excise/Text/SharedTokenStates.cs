using TorchSharp;

namespace Excise.Text;

/// <summary>
/// Gives the words a caption shares with another caption the other caption's states. A contextual encoder spreads what a
/// phrase means over every token of the prompt ("a bag" reads differently beside "with the Acme logo"); a caption's
/// shared tokens, re-stated from the caption without the phrase, carry nothing of it, and only the phrase's own tokens do.
/// </summary>
public static class SharedTokenStates
{
    /// <summary>
    /// For each caption → context caption pair, the caption's tokens that open and close both (their common token prefix
    /// and suffix, special tokens included) take the context caption's states at the matching positions; the tokens in
    /// between, which the context caption lacks, keep their own. Returns how many token states were replaced.
    /// </summary>
    public static int ReplaceWithContext(TextStateCache cache, ITextEncoder encoder, IReadOnlyDictionary<string, string> contextOf)
    {
        if (contextOf.Count == 0) return 0;
        if (encoder.Id != cache.EncoderId)
            throw new ArgumentException($"The cache was encoded by '{cache.EncoderId}', not '{encoder.Id}'.");
        var pairs = contextOf.ToList();
        var context = encoder.Encode(pairs.Select(p => p.Value).ToList());
        int replaced = 0, width = cache.Width;
        using var scope = torch.NewDisposeScope();
        for (int c = 0; c < pairs.Count; c++)
        {
            var caption = encoder.Tokenizer.Tokenize(pairs[c].Key, cache.Length);
            var (start, end, offset) = SharedSpans(caption, encoder.Tokenizer.Tokenize(pairs[c].Value, cache.Length));
            var row = cache.States[cache.IndexOf(pairs[c].Key)];
            var contextStates = context.StatesOf(c);
            for (int t = 0; t < caption.RealLength; t++)
            {
                if (t >= start && t < end) continue;
                int source = t < start ? t : t + offset;
                row[t].copy_(torch.tensor(contextStates.Slice(source * width, width).ToArray()));
                replaced++;
            }
        }
        return replaced;
    }

    /// <summary>
    /// [start, end): the caption's positions between its common prefix and suffix with the context; offset: what to add to a
    /// suffix position of the caption to reach the same token in the context.
    /// </summary>
    static (int Start, int End, int Offset) SharedSpans(TokenizedText caption, TokenizedText context)
    {
        int n = caption.RealLength, m = context.RealLength;
        int prefix = 0;
        while (prefix < n && prefix < m && caption.InputIds[prefix] == context.InputIds[prefix]) prefix++;
        int suffix = 0;
        while (suffix < n - prefix && suffix < m - prefix && caption.InputIds[n - 1 - suffix] == context.InputIds[m - 1 - suffix]) suffix++;
        return (prefix, n - suffix, m - n);
    }
}
