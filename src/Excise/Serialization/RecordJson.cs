using System.Text.Json;
using System.Text.Json.Serialization;

namespace Excise.Serialization;

/// <summary>
/// How the records a run writes for people and programs to read (metrics, results, certificates, mask reports,
/// benchmarks) are spelled in JSON: snake_case keys, indented, unset fields left out. A rate over 0 trials is NaN,
/// which JSON has no number for, so it is written as the string "NaN" instead of failing the whole file.
/// Configs are read more strictly (Configuration.ConfigLoader): an unknown key there is a typo.
/// </summary>
public static class RecordJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>Reads a record of type <typeparamref name="T"/>; anything else is an error naming <paramref name="source"/> and what it was expected to be.</summary>
    public static T Read<T>(string json, string source, string what)
    {
        try
        {
            return JsonSerializer.Deserialize<T>(json, Options) ?? throw new InvalidDataException($"{source}: the JSON is null, not {what}.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: not {what}: {e.Message}", e);
        }
    }
}
