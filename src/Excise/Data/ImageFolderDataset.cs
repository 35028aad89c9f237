using System.Text;
using System.Text.Json;
using Excise.Imaging;

namespace Excise.Data;

/// <summary>
/// Hugging Face "imagefolder" layout: image files plus metadata.jsonl lines {"file_name": ..., "text": ...}.
/// Our exports also carry "id", "label", "stamped" and "caption_mentions_concept"; other fields are ignored on read.
/// Where the concept is in an image (for the masked-loss arm) comes the way kohya-ss sd-scripts' users give it: a mask
/// image named by "mask_file_name" (same size; white: learn, black: the concept, ignored by the loss), or else the
/// image's own alpha channel (transparent: the concept). Exports write the former for every stamped image.
/// </summary>
public static class ImageFolderDataset
{
    public const string MetadataFileName = "metadata.jsonl";

    public static IReadOnlyList<TrainingExample> Read(string directory)
    {
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"{directory}: imagefolder directory not found.");
        var metadataPath = Path.Combine(directory, MetadataFileName);
        if (!File.Exists(metadataPath)) throw new FileNotFoundException($"{metadataPath}: imagefolder has no {MetadataFileName}.", metadataPath);

        var examples = new List<TrainingExample>();
        int lineNumber = 0;
        foreach (var line in File.ReadLines(metadataPath))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            examples.Add(ParseLine(directory, metadataPath, lineNumber, line));
        }
        return examples;
    }

    private static TrainingExample ParseLine(string directory, string metadataPath, int lineNumber, string line)
    {
        string where = $"{metadataPath}:{lineNumber}";
        JsonDocument document;
        try { document = JsonDocument.Parse(line); }
        catch (JsonException error) { throw new InvalidDataException($"{where}: not valid JSON: {error.Message}", error); }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{where}: expected a JSON object, got {root.ValueKind}.");
            var fileName = RequiredString(root, "file_name", where);
            var caption = RequiredString(root, "text", where);
            var imagePath = ImagePath(directory, fileName, where);
            if (!File.Exists(imagePath)) throw new InvalidDataException($"{where}: image file '{fileName}' not found ({imagePath}).");
            RasterImage image;
            try { image = PngIO.Load(imagePath); }
            catch (InvalidDataException error) { throw new InvalidDataException($"{where}: image '{fileName}' could not be decoded: {error.Message}", error); }

            var id = OptionalString(root, "id", where) ?? Path.GetFileNameWithoutExtension(fileName);
            int? label = root.TryGetProperty("label", out var labelElement) && labelElement.ValueKind != JsonValueKind.Null
                ? labelElement.ValueKind == JsonValueKind.Number && labelElement.TryGetInt32(out var parsed) ? parsed
                    : throw new InvalidDataException($"{where}: \"label\" must be an integer or null (got {Shorten(labelElement.GetRawText())}).")
                : null;
            var truth = new ConceptTruth(OptionalBool(root, "stamped", where), OptionalBool(root, "caption_mentions_concept", where));
            var conceptMask = OptionalString(root, "mask_file_name", where) is { } maskName
                ? MaskFile(directory, maskName, image, where)
                : AlphaMask(imagePath, where);
            return new TrainingExample(id, image, caption, label, truth, conceptMask);
        }
    }

    /// <summary>A mask image (white: learn, black: the concept) as a concept mask; it must match its image's size.</summary>
    static RasterImage MaskFile(string directory, string maskName, RasterImage image, string where)
    {
        var maskPath = ImagePath(directory, maskName, where);
        if (!File.Exists(maskPath)) throw new InvalidDataException($"{where}: mask file '{maskName}' not found ({maskPath}).");
        RasterImage mask;
        try { mask = PngIO.Load(maskPath); }
        catch (InvalidDataException error) { throw new InvalidDataException($"{where}: mask '{maskName}' could not be decoded: {error.Message}", error); }
        if (mask.Width != image.Width || mask.Height != image.Height)
            throw new InvalidDataException($"{where}: mask '{maskName}' is {mask.Width}x{mask.Height}, its image {image.Width}x{image.Height}; a mask must cover its image pixel for pixel.");
        return ConceptMasks.FromLearnMask(mask);
    }

    /// <summary>The image's transparent pixels (alpha below half) as the concept; null for an opaque image.</summary>
    static RasterImage? AlphaMask(string imagePath, string where)
    {
        var (width, height, channels, bytes) = PngIO.DecodeWithAlpha(File.ReadAllBytes(imagePath), where);
        if (channels != 4) return null;
        var concept = new byte[width * height];
        bool any = false;
        for (int i = 0; i < concept.Length; i++)
            if (bytes[i * 4 + 3] < 128) { concept[i] = ConceptMasks.Concept; any = true; }
        return any ? new RasterImage(width, height, 1, concept) : null;
    }

    /// <summary>Writes one PNG per example ({id}.png) and metadata.jsonl; the metadata appears last, by rename, so a
    /// reader never sees a metadata file that names images not yet written.</summary>
    public static void Write(string directory, IReadOnlyList<TrainingExample> examples)
    {
        Directory.CreateDirectory(directory);
        var usedNames = new HashSet<string>(StringComparer.Ordinal);
        var metadataPath = Path.Combine(directory, MetadataFileName);
        var temporaryPath = metadataPath + ".tmp";
        using (var stream = new FileStream(temporaryPath, FileMode.Create, FileAccess.Write))
        {
            foreach (var example in examples)
            {
                var fileName = SafeFileName(example.Id) + ".png";
                if (!usedNames.Add(fileName)) throw new ArgumentException($"Two examples map to the same file name '{fileName}' (ids must be unique).");
                PngIO.Save(example.Image, Path.Combine(directory, fileName));
                string? maskName = null;
                if (example.ConceptMask is { } mask)
                {
                    maskName = SafeFileName(example.Id) + ".mask.png";
                    if (!usedNames.Add(maskName)) throw new ArgumentException($"Two files map to the same name '{maskName}'.");
                    // Written in the users' convention (white: learn), so the folder reads the same way it is documented.
                    PngIO.Save(ConceptMasks.ToLearnMask(mask), Path.Combine(directory, maskName));
                }
                WriteMetadataLine(stream, fileName, example, maskName);
            }
        }
        File.Move(temporaryPath, metadataPath, overwrite: true);
    }

    private static void WriteMetadataLine(Stream stream, string fileName, TrainingExample example, string? maskName)
    {
        using (var writer = new Utf8JsonWriter(stream))
        {
            writer.WriteStartObject();
            writer.WriteString("file_name", fileName);
            writer.WriteString("text", example.Caption);
            writer.WriteString("id", example.Id);
            if (example.ClassLabel is { } label) writer.WriteNumber("label", label); else writer.WriteNull("label");
            writer.WriteBoolean("stamped", example.Truth.Stamped);
            writer.WriteBoolean("caption_mentions_concept", example.Truth.CaptionMentionsConcept);
            if (maskName is not null) writer.WriteString("mask_file_name", maskName);
            writer.WriteEndObject();
        }
        stream.WriteByte((byte)'\n');
    }

    private static string SafeFileName(string id)
    {
        var invalid = Path.GetInvalidFileNameChars();
        var builder = new StringBuilder(id.Length);
        foreach (var c in id) builder.Append(invalid.Contains(c) || c == ' ' ? '_' : c);
        return builder.Length == 0 ? "_" : builder.ToString();
    }

    /// <summary>Resolves a file_name inside the dataset folder; a metadata file may not point the reader at files elsewhere.</summary>
    private static string ImagePath(string directory, string fileName, string where)
    {
        if (fileName.Length == 0 || fileName.Contains('\0'))
            throw new InvalidDataException($"{where}: \"file_name\" is empty or contains a NUL character.");
        var folder = Path.GetFullPath(directory);
        var imagePath = Path.GetFullPath(Path.Combine(folder, fileName));
        if (!imagePath.StartsWith(Path.TrimEndingDirectorySeparator(folder) + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            throw new InvalidDataException($"{where}: file_name '{Shorten(fileName)}' points outside the dataset folder {folder}; file names are paths relative to it.");
        return imagePath;
    }

    private static string Shorten(string text) => text.Length <= 40 ? text : text[..40] + "…";

    private static string RequiredString(JsonElement root, string name, string where) =>
        OptionalString(root, name, where) ?? throw new InvalidDataException($"{where}: missing required string field \"{name}\".");

    private static string? OptionalString(JsonElement root, string name, string where)
    {
        if (!root.TryGetProperty(name, out var element) || element.ValueKind == JsonValueKind.Null) return null;
        return element.ValueKind == JsonValueKind.String ? element.GetString() : throw new InvalidDataException($"{where}: \"{name}\" must be a string.");
    }

    private static bool OptionalBool(JsonElement root, string name, string where)
    {
        if (!root.TryGetProperty(name, out var element) || element.ValueKind == JsonValueKind.Null) return false;
        return element.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new InvalidDataException($"{where}: \"{name}\" must be true or false.")
        };
    }
}
