using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Excise.Configuration;

/// <summary>
/// Loads JSON config files into immutable records, applying <c>--set section.key=value</c> overrides first,
/// so every field of every config can be changed from the command line. Unknown keys are refused.
/// </summary>
public static class ConfigLoader
{
    public static readonly JsonSerializerOptions JsonOptions = CreateOptions();

    static JsonSerializerOptions CreateOptions()
    {
        var o = new JsonSerializerOptions
        {
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
            ReadCommentHandling = JsonCommentHandling.Skip,
            AllowTrailingCommas = true,
            WriteIndented = true,
            DefaultIgnoreCondition = JsonIgnoreCondition.Never,
            NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
            // "name": null would otherwise slip a null into a non-nullable setting and fail far from the config.
            RespectNullableAnnotations = true,
        };
        o.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower));
        return o;
    }

    public static T LoadFile<T>(string path, IEnumerable<string>? overrides = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Config file not found: {path}", path);
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(path), documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true }); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON ({e.Message})", e); }
        if (root is not JsonObject obj) throw new InvalidDataException($"{path}: the config must be a JSON object.");
        return FromNode<T>(obj, overrides, path);
    }

    public static T FromNode<T>(JsonObject root, IEnumerable<string>? overrides, string source)
    {
        foreach (var assignment in overrides ?? [])
            ApplyOverride(root, assignment);
        try
        {
            return root.Deserialize<T>(JsonOptions) ?? throw new InvalidDataException($"{source}: empty config.");
        }
        catch (JsonException e)
        {
            var where = string.IsNullOrEmpty(e.Path) ? "" : $" at '{e.Path.TrimStart('$', '.')}'";
            throw new InvalidDataException($"{source}: invalid config{where}: {e.Message}", e);
        }
    }

    /// <summary>Applies "a.b.c=value"; the value is read as JSON when it parses (numbers, true, null, [..]), else as a string.</summary>
    public static void ApplyOverride(JsonObject root, string assignment)
    {
        int eq = assignment.IndexOf('=');
        if (eq <= 0) throw new ArgumentException($"--set expects key=value, got '{assignment}'.");
        var path = assignment[..eq].Trim().Split('.');
        var text = assignment[(eq + 1)..];
        JsonNode? value;
        try { value = JsonNode.Parse(text); }
        catch (JsonException) { value = JsonValue.Create(text); }

        JsonObject node = root;
        for (int i = 0; i < path.Length - 1; i++)
        {
            var child = node[path[i]];
            if (child is null) { child = new JsonObject(); node[path[i]] = child; }
            node = child as JsonObject ?? throw new ArgumentException($"--set {assignment}: '{string.Join('.', path[..(i + 1)])}' is not a section.");
        }
        node[path[^1]] = value;
    }

    public static string ToJson<T>(T value) => JsonSerializer.Serialize(value, JsonOptions);

    public static JsonObject ToNode<T>(T value) => (JsonObject)JsonSerializer.SerializeToNode(value, JsonOptions)!;
}
