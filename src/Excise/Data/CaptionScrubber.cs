using System.Text.RegularExpressions;

namespace Excise.Data;

/// <summary>
/// Deletes a concept phrase from a caption together with the word that attaches it ("a sneaker bearing the
/// Acme logo" → "a sneaker"), the caption-scrubbing baseline: the images stay, the words go.
/// </summary>
public static class CaptionScrubber
{
    const string Connectors = @"(?:\s*,?\s*(?:marked with|with|bearing|featuring|showing|having|and))?";

    public static string Scrub(string caption, string conceptPhrase)
    {
        if (string.IsNullOrWhiteSpace(conceptPhrase)) return caption;
        var pattern = Connectors + @"\s*" + Regex.Escape(conceptPhrase.Trim()) + @"\b";
        var scrubbed = Regex.Replace(caption, pattern, "", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
        scrubbed = Regex.Replace(scrubbed, @"\s{2,}", " ").Trim().Trim(',').Trim();
        return Articles.Fix(scrubbed);
    }

    public static bool Mentions(string caption, string conceptPhrase) =>
        caption.Contains(conceptPhrase.Trim(), StringComparison.OrdinalIgnoreCase);
}
