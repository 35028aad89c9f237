using System.Text.Json;

namespace Excise.Models;

/// <summary>
/// A Hugging Face model config as Excise reads it — diffusers' or transformers' <c>config.json</c>, or the golden files'
/// wrapper that holds it under <c>"config"</c>: lenient JSON (comments and trailing commas, as hand-edited configs have
/// them), and typed reads where an absent or null key is null (the class default takes over) and a value of the wrong
/// type is an <see cref="InvalidDataException"/> naming the key.
/// </summary>
internal sealed class HuggingFaceConfigJson : IDisposable
{
    readonly JsonDocument document;
    readonly string what;

    /// <param name="what">What the errors call the file ("UNet config", "CLIP text config").</param>
    public HuggingFaceConfigJson(string json, string what)
    {
        this.what = what;
        try { document = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip }); }
        catch (JsonException e) { throw new InvalidDataException($"{what} is not valid JSON: {e.Message}", e); }
        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            document.Dispose();
            throw new InvalidDataException($"{what} must be a JSON object.");
        }
        Root = document.RootElement.TryGetProperty("config", out var wrapped) && wrapped.ValueKind == JsonValueKind.Object ? wrapped : document.RootElement;
    }

    /// <summary>The file's own top-level object (where diffusers writes <c>_class_name</c>).</summary>
    public JsonElement File => document.RootElement;

    /// <summary>The config's keys: the file, or its <c>"config"</c> member in the golden wrapper.</summary>
    public JsonElement Root { get; }

    /// <summary>Refuses a file that says it is another class (<c>_class_name</c>, which diffusers writes); none said is fine.</summary>
    public void RequireClassName(string className)
    {
        if (File.TryGetProperty("_class_name", out var named) && named.ValueKind == JsonValueKind.String && named.GetString() != className)
            throw new NotSupportedException($"{what} '_class_name': '{named.GetString()}' is not supported (only {className}).");
    }

    /// <summary>Refuses, naming the key, a value that would make a model Excise does not build; an absent key takes the class default.</summary>
    public void RefuseUnsupported(IEnumerable<(string Key, string Expected, Func<JsonElement, bool> IsSupported)> keys)
    {
        foreach (var (key, expected, isSupported) in keys)
            if (Root.TryGetProperty(key, out var value) && !isSupported(value))
                throw new NotSupportedException($"{what} '{key}': {value.GetRawText()} is not supported (only {expected}).");
    }

    public bool TryGetNonNull(string key, out JsonElement value) => Root.TryGetProperty(key, out value) && value.ValueKind != JsonValueKind.Null;

    public int? ReadInt(string key) => Read(key, "an integer", v => v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out _), v => (int?)v.GetInt32());

    public double? ReadDouble(string key) => Read(key, "a number", v => v.ValueKind == JsonValueKind.Number, v => (double?)v.GetDouble());

    public bool? ReadBool(string key) => Read(key, "true or false", v => v.ValueKind is JsonValueKind.True or JsonValueKind.False, v => (bool?)v.GetBoolean());

    public string? ReadString(string key) => Read(key, "a string", v => v.ValueKind == JsonValueKind.String, v => v.GetString());

    public IReadOnlyList<int>? ReadIntList(string key) => Read(key, "a list of integers",
        v => v.ValueKind == JsonValueKind.Array && v.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out _)),
        v => (IReadOnlyList<int>?)v.EnumerateArray().Select(e => e.GetInt32()).ToArray());

    /// <summary>One integer for every block, or a list of them (diffusers accepts both).</summary>
    public IReadOnlyList<int>? ReadIntOrList(string key) =>
        TryGetNonNull(key, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var single) ? [single] : ReadIntList(key);

    public IReadOnlyList<string>? ReadStringList(string key) => Read(key, "a list of strings",
        v => v.ValueKind == JsonValueKind.Array && v.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String),
        v => (IReadOnlyList<string>?)v.EnumerateArray().Select(e => e.GetString()!).ToArray());

    T? Read<T>(string key, string expected, Func<JsonElement, bool> isValid, Func<JsonElement, T?> read)
    {
        if (!TryGetNonNull(key, out var value)) return default;
        return isValid(value) ? read(value) : throw new InvalidDataException($"{what} '{key}': expected {expected}, got {value.GetRawText()}.");
    }

    public void Dispose() => document.Dispose();
}
