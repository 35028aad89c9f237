namespace Excise.Configuration;

/// <summary>Range checks shared by the config sections.</summary>
internal static class ConfigRules
{
    /// <summary>Refuses NaN and infinities first, so the range checks after it need not think about them.</summary>
    public static void RequireFinite(params (string Key, double Value)[] settings)
    {
        foreach (var (key, value) in settings)
            if (!double.IsFinite(value)) throw new ArgumentException($"{key} must be a finite number (got {value}).");
    }

    public static void RequireNoBlankEntries(IReadOnlyList<string>? values, string key)
    {
        if (values is null) return;
        if (values.Count == 0) throw new ArgumentException($"{key} is empty; leave it out (or null) for the default.");
        for (int i = 0; i < values.Count; i++)
            if (string.IsNullOrWhiteSpace(values[i])) throw new ArgumentException($"{key}[{i}] is {(values[i] is null ? "null" : "blank")}.");
    }

    public static void RequireRegexes(IReadOnlyList<string>? patterns, string key)
    {
        RequireNoBlankEntries(patterns, key);
        foreach (var pattern in patterns ?? []) _ = NamePattern.Compile(pattern, key);
    }
}
