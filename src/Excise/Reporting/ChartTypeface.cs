using SkiaSharp;

namespace Excise.Reporting;

/// <summary>
/// The typeface chart text is drawn with. The Linux Skia build Excise ships (NativeAssets.Linux.NoDependencies) has no
/// fontconfig, so <see cref="SKTypeface.Default"/> there is an empty face: text measures 0 and draws nothing (it does not
/// throw). A TrueType file from the usual font folders is loaded instead; with none, charts are still written, unlabelled.
/// </summary>
internal static class ChartTypeface
{
    static readonly Lazy<SKTypeface> Resolved = new(Resolve);

    public static SKTypeface Current => Resolved.Value;

    /// <summary>False when no font with Latin glyphs was found: chart text is then invisible.</summary>
    public static bool CanDrawText => HasLatinGlyphs(Current);

    // Plain sans faces first, so a machine with several fonts gives the same charts every time.
    static readonly string[] PreferredFiles =
    [
        "DejaVuSans.ttf", "LiberationSans-Regular.ttf", "NotoSans-Regular.ttf", "FreeSans.ttf", "Arial.ttf", "arial.ttf",
        "Helvetica.ttc", "Ubuntu-R.ttf", "Cantarell-Regular.otf",
    ];

    static SKTypeface Resolve()
    {
        var fallback = SKTypeface.Default ?? SKTypeface.CreateDefault();
        if (HasLatinGlyphs(fallback)) return fallback;
        var files = FontDirectories()
            .SelectMany(EnumerateFontFiles)
            .OrderBy(Preference)
            .ThenBy(path => path, StringComparer.Ordinal);
        foreach (var file in files)
            if (TryLoad(file) is { } typeface) return typeface;
        return fallback;
    }

    static int Preference(string path)
    {
        int index = Array.IndexOf(PreferredFiles, Path.GetFileName(path));
        return index < 0 ? PreferredFiles.Length : index;
    }

    static SKTypeface? TryLoad(string file)
    {
        var typeface = SKTypeface.FromFile(file);
        if (typeface is null) return null;
        if (HasLatinGlyphs(typeface)) return typeface;
        typeface.Dispose();
        return null;
    }

    static bool HasLatinGlyphs(SKTypeface typeface)
    {
        if (typeface.GlyphCount == 0) return false;
        using var font = new SKFont(typeface);
        return font.ContainsGlyphs("Aa0.");
    }

    static IEnumerable<string> FontDirectories()
    {
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        string system = Environment.GetFolderPath(Environment.SpecialFolder.Fonts);
        string[] candidates =
        [
            "/usr/share/fonts", "/usr/local/share/fonts", Path.Combine(home, ".local/share/fonts"), Path.Combine(home, ".fonts"),
            "/Library/Fonts", "/System/Library/Fonts", system,
        ];
        return candidates.Where(d => !string.IsNullOrEmpty(d) && Directory.Exists(d)).Distinct();
    }

    static IEnumerable<string> EnumerateFontFiles(string directory)
    {
        var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, MaxRecursionDepth = 4 };
        try
        {
            return Directory.EnumerateFiles(directory, "*", options)
                .Where(f => f.EndsWith(".ttf", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".otf", StringComparison.OrdinalIgnoreCase)
                            || f.EndsWith(".ttc", StringComparison.OrdinalIgnoreCase))
                .ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }
}
