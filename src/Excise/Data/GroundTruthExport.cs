using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Excise.Data;

/// <summary>Per-example ground truth for evaluation: id, class, caption, stamped, caption_mentions_concept.</summary>
public static class GroundTruthExport
{
    public const string CsvHeader = "id,class,class_name,caption,stamped,caption_mentions_concept";

    public static void WriteCsv(string path, IEnumerable<TrainingExample> examples)
    {
        var builder = new StringBuilder().Append(CsvHeader).Append('\n');
        foreach (var example in examples)
        {
            builder.Append(Quote(example.Id)).Append(',')
                .Append(example.ClassLabel?.ToString(CultureInfo.InvariantCulture) ?? "").Append(',')
                .Append(Quote(ClassNameOf(example.ClassLabel) ?? "")).Append(',')
                .Append(Quote(example.Caption)).Append(',')
                .Append(example.Truth.Stamped ? "true" : "false").Append(',')
                .Append(example.Truth.CaptionMentionsConcept ? "true" : "false").Append('\n');
        }
        WriteAtomically(path, builder.ToString());
    }

    public static void WriteJsonl(string path, IEnumerable<TrainingExample> examples)
    {
        var builder = new StringBuilder();
        foreach (var example in examples)
        {
            builder.Append(JsonSerializer.Serialize(new Dictionary<string, object?>
            {
                ["id"] = example.Id,
                ["class"] = example.ClassLabel,
                ["class_name"] = ClassNameOf(example.ClassLabel),
                ["caption"] = example.Caption,
                ["stamped"] = example.Truth.Stamped,
                ["caption_mentions_concept"] = example.Truth.CaptionMentionsConcept,
            })).Append('\n');
        }
        WriteAtomically(path, builder.ToString());
    }

    private static string? ClassNameOf(int? label) =>
        label is >= 0 and < FashionMnistClasses.Count ? FashionMnistClasses.NameOf(label.Value) : null;

    private static string Quote(string field) =>
        field.IndexOfAny([',', '"', '\n', '\r']) < 0 ? field : "\"" + field.Replace("\"", "\"\"") + "\"";

    private static void WriteAtomically(string path, string content)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(directory)) Directory.CreateDirectory(directory);
        File.WriteAllText(path + ".tmp", content, new UTF8Encoding(false));
        File.Move(path + ".tmp", path, overwrite: true);
    }
}
