using System.Text;
using Excise.Imaging;

namespace Excise.Reporting;

/// <summary>
/// The few HTML pieces the report needs. Output is also well-formed XML (no named entities, closed void elements), so
/// tests and other tools can parse the report with an XML reader.
/// </summary>
internal static class Html
{
    public static string Escape(string text)
    {
        var escaped = new StringBuilder(text.Length);
        foreach (char c in text)
            escaped.Append(c switch
            {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&quot;",
                '\'' => "&#39;",
                _ => c.ToString(),
            });
        return escaped.ToString();
    }

    /// <summary>An attribute with a leading space: <c> title="…"</c>.</summary>
    public static string Attribute(string name, string value) => $" {name}=\"{Escape(value)}\"";

    /// <summary>
    /// An &lt;img&gt; with the PNG at <paramref name="relativePath"/> embedded as a data URI (the report must open
    /// offline and on its own), or null when the file is missing or is not a PNG.
    /// </summary>
    public static string? EmbeddedPng(string outputDirectory, string relativePath, string alt)
    {
        var path = ReportFiles.Resolve(outputDirectory, relativePath);
        if (!File.Exists(path)) return null;
        var bytes = File.ReadAllBytes(path);
        if (!PngIO.HasPngSignature(bytes)) return null;
        return $"<img src=\"data:image/png;base64,{Convert.ToBase64String(bytes)}\"{Attribute("alt", alt)} />";
    }

    /// <summary>A relative href: forward slashes, each segment percent-encoded.</summary>
    public static string RelativeHref(string relativePath) =>
        string.Join('/', relativePath.Replace('\\', '/').Split('/').Select(Uri.EscapeDataString));
}
