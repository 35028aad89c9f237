using System.Collections.Concurrent;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Excise.Configuration;

/// <summary>
/// The one spelling of every enum the project writes or reads — on the command line, in configs, results and file
/// metadata: the member's <see cref="JsonStringEnumMemberNameAttribute"/> when it has one, else its name in kebab-case
/// (<c>InversionControl</c> → <c>inversion-control</c>), which is what <see cref="ConfigLoader"/>'s JSON converter writes.
/// </summary>
public static class EnumNames
{
    static readonly ConcurrentDictionary<Type, IReadOnlyDictionary<Enum, string>> Spellings = new();

    static IReadOnlyDictionary<Enum, string> SpellingsOf(Type type) => Spellings.GetOrAdd(type, t =>
        t.GetFields(BindingFlags.Public | BindingFlags.Static).ToDictionary(
            field => (Enum)field.GetValue(null)!,
            field => field.GetCustomAttribute<JsonStringEnumMemberNameAttribute>()?.Name ?? JsonNamingPolicy.KebabCaseLower.ConvertName(field.Name)));

    public static string ToName<T>(this T value) where T : struct, Enum =>
        SpellingsOf(typeof(T)).TryGetValue(value, out var name) ? name
            : throw new ArgumentOutOfRangeException(nameof(value), value, $"Not a {typeof(T).Name}.");

    /// <summary>Every spelling in declaration order, joined (for usage lines and error messages).</summary>
    public static string AllNames<T>(string separator = ", ") where T : struct, Enum =>
        string.Join(separator, Enum.GetValues<T>().Select(v => v.ToName()));

    /// <summary>Reads a spelling back, ignoring case and surrounding space; the C# member name is accepted too (older files wrote it).</summary>
    public static bool TryParse<T>(string? text, out T value) where T : struct, Enum
    {
        var wanted = text?.Trim() ?? "";
        foreach (var candidate in Enum.GetValues<T>())
            if (string.Equals(candidate.ToName(), wanted, StringComparison.OrdinalIgnoreCase)
                || string.Equals(candidate.ToString(), wanted, StringComparison.OrdinalIgnoreCase))
            {
                value = candidate;
                return true;
            }
        value = default;
        return false;
    }

    /// <param name="what">What the value is, for the error: "arm", "attack kind", "--sampler".</param>
    public static T Parse<T>(string text, string what) where T : struct, Enum =>
        TryParse<T>(text, out var value) ? value
            : throw new ArgumentException($"{what} must be one of {AllNames<T>()} (got '{text}').");
}
