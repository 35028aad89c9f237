using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Excise.Tests.Reliability;

/// <summary>
/// Structured mutations of a JSON document: a value replaced by one of the wrong type or at a boundary, a key
/// removed, renamed, added or repeated, nesting made absurdly deep. Used for safetensors headers, metadata.jsonl
/// lines and run configs, so the loaders see well-formed JSON that means something hostile.
/// </summary>
public static class JsonMutations
{
    /// <summary>Values that are the wrong type for most settings, or the right type at a boundary.</summary>
    public static JsonNode? HostileValue(Random random) => random.Next(25) switch
    {
        22 => "/dev/zero",
        23 => "(a+)+$",
        24 => "(x)\\1",
        0 => null,
        1 => "x",
        2 => "",
        3 => true,
        4 => 0,
        5 => -1,
        6 => 1e308,
        7 => -1e308,
        8 => (long)int.MaxValue + 1,
        9 => long.MaxValue,
        10 => 1.5,
        11 => "NaN",
        12 => "Infinity",
        13 => "-Infinity",
        14 => new JsonArray(),
        15 => new JsonObject(),
        16 => new JsonArray(1, "a", null),
        17 => int.MinValue,
        18 => 5e-324,
        19 => new string('a', 1 + random.Next(100_000)),
        20 => "../../../../etc/passwd",
        _ => "\u0000\uFFFD\u202E",
    };

    /// <summary>Every place in the tree a value sits: (parent object or array, key or index, value).</summary>
    public static List<(JsonNode Parent, object Slot, JsonNode? Value)> Slots(JsonNode root)
    {
        var slots = new List<(JsonNode, object, JsonNode?)>();
        void Walk(JsonNode? node)
        {
            switch (node)
            {
                case JsonObject obj:
                    foreach (var (key, value) in obj) { slots.Add((obj, key, value)); Walk(value); }
                    break;
                case JsonArray array:
                    for (int i = 0; i < array.Count; i++) { slots.Add((array, i, array[i])); Walk(array[i]); }
                    break;
            }
        }
        Walk(root);
        return slots;
    }

    /// <summary>One structured edit of <paramref name="root"/> (mutated in place), described. Returns the text to write.</summary>
    public static (string Text, string What) Mutate(JsonNode root, Random random, Func<Random, JsonNode?>? domainValue = null)
    {
        var slots = Slots(root);
        if (slots.Count == 0) return (Serialize(HostileValue(random)), "replaced the whole document");
        var (parent, slot, value) = random.Pick(slots);
        string where = Describe(parent, slot);
        switch (random.Next(9))
        {
            case 0 or 1 or 2:
            {
                var replacement = domainValue is not null && random.Next(2) == 0 ? domainValue(random) : HostileValue(random);
                Set(parent, slot, replacement);
                return (Serialize(root), $"{where} = {Short(replacement)}");
            }
            case 3 when value is JsonValue number && number.TryGetValue<double>(out var d):
            {
                double tweaked = random.Next(5) switch { 0 => -d, 1 => d + 1, 2 => d - 1, 3 => d * 1e6, _ => 0 };
                Set(parent, slot, JsonValue.Create(tweaked));
                return (Serialize(root), $"{where} {d} → {tweaked}");
            }
            case 4 when parent is JsonObject obj:
                obj.Remove((string)slot);
                return (Serialize(root), $"removed {where}");
            case 5 when parent is JsonObject obj:
            {
                var key = (string)slot;
                var renamed = random.Next(3) switch { 0 => key + "s", 1 => key.ToUpperInvariant(), _ => key.Length > 1 ? key[..^1] : "_" };
                var moved = obj[key];
                obj.Remove(key);
                if (!obj.ContainsKey(renamed)) obj[renamed] = moved;
                return (Serialize(root), $"renamed {where} to '{renamed}'");
            }
            case 6 when parent is JsonObject obj:
                return (SerializeWithDuplicate(root, obj, (string)slot, HostileValue(random)), $"repeated key {where}");
            case 7:
            {
                int depth = random.Next(2) == 0 ? 70 : 5_000;
                const string marker = "\"__nest_here__\"";
                Set(parent, slot, JsonValue.Create("__nest_here__"));
                var nested = new string('[', depth) + new string(']', depth);
                return (Serialize(root).Replace(marker, nested), $"{where} nested {depth} deep");
            }
            case 8 when parent is JsonObject obj:
                obj[$"unknown_{random.Next(100)}"] = HostileValue(random);
                return (Serialize(root), $"added an unknown key next to {where}");
            default:
                Set(parent, slot, HostileValue(random));
                return (Serialize(root), $"{where} = hostile value");
        }
    }

    public static string Serialize(JsonNode? node) => node?.ToJsonString(WriteOptions) ?? "null";

    static readonly JsonSerializerOptions WriteOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    static void Set(JsonNode parent, object slot, JsonNode? value)
    {
        if (value?.Parent is not null) value = value.DeepClone();
        if (parent is JsonObject obj) obj[(string)slot] = value;
        else ((JsonArray)parent)[(int)slot] = value;
    }

    static string Describe(JsonNode parent, object slot) => $"{parent.GetPath()}{(slot is int i ? $"[{i}]" : $".{slot}")}";

    static string Short(JsonNode? node)
    {
        var text = Serialize(node);
        return text.Length > 40 ? text[..40] + "…" : text;
    }

    /// <summary>Writes the tree with <paramref name="key"/> of <paramref name="target"/> written a second time (JSON allows it; readers disagree on which wins).</summary>
    public static string SerializeWithDuplicate(JsonNode root, JsonObject target, string key, JsonNode? secondValue)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { SkipValidation = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            void Write(JsonNode? node)
            {
                if (node is JsonObject obj)
                {
                    writer.WriteStartObject();
                    foreach (var (k, v) in obj) { writer.WritePropertyName(k); Write(v); }
                    if (ReferenceEquals(obj, target)) { writer.WritePropertyName(key); Write(secondValue); }
                    writer.WriteEndObject();
                }
                else if (node is null) writer.WriteNullValue();
                else node.WriteTo(writer);
            }
            Write(root);
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }
}
