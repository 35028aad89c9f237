using System.Text;
using System.Text.Json;
using Excise.Imaging;
using Excise.Serialization;

namespace Excise.Data;

/// <summary>One line of a mask folder's masks.jsonl: which example a mask belongs to, its file, and the file's SHA-256.</summary>
public sealed record ConceptMaskLine(string Id, string FileName, string Sha256);

/// <summary>
/// Concept masks made apart from the data — by a detector (<c>excise masks</c>), a segmenter or by hand — kept in a
/// folder a run points at (<c>selective.mask_folder</c>), where they replace the data's own masks for the masked loss:
/// <code>
/// masks/
///   masks.jsonl    {"id": "train-00012", "file_name": "000000.png", "sha256": "…"}   one line per masked example
///   000000.png     same size as the example's image; white: learn, black: the concept (kohya-ss's convention)
/// </code>
/// An example without a line has no concept pixels: the folder is the whole answer to "where is the concept", so a
/// detector that misses an image leaves it unmasked, as it would for a user. The index appears last, by rename, and
/// names each PNG's hash, so its own hash (<see cref="ContentHash"/>) pins every mask.
/// </summary>
public static class ConceptMaskFolder
{
    public const string IndexFileName = "masks.jsonl";

    static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>Writes the concept masks (255 on the concept) by example id; ids keep their order.</summary>
    public static void Write(string directory, IReadOnlyList<(string Id, RasterImage ConceptMask)> masks)
    {
        if (masks.Select(m => m.Id).Distinct(StringComparer.Ordinal).Count() != masks.Count)
            throw new ArgumentException("Two masks name the same example id.");
        Directory.CreateDirectory(directory);
        var index = new StringBuilder();
        for (int i = 0; i < masks.Count; i++)
        {
            var (id, mask) = masks[i];
            if (mask.Channels != 1) throw new ArgumentException($"The mask of '{id}' has {mask.Channels} channels; a concept mask has one.");
            var fileName = $"{i:D6}.png";
            var bytes = PngIO.Encode(ConceptMasks.ToLearnMask(mask));
            // Plain writes: the index, written last by rename, is what makes them part of the folder.
            File.WriteAllBytes(Path.Combine(directory, fileName), bytes);
            index.Append(JsonSerializer.Serialize(new ConceptMaskLine(id, fileName, Digest.OfBytes(bytes)), Json)).Append('\n');
        }
        AtomicFile.WriteAllText(IndexPath(directory), index.ToString());
    }

    public static string IndexPath(string directory) => Path.Combine(directory, IndexFileName);

    /// <summary>The folder's content hash: its index's, which names every mask file's hash.</summary>
    public static string ContentHash(string directory) => Digest.Sha256(RequireIndex(directory));

    /// <summary>The concept masks by example id, each checked against the hash its line records.</summary>
    public static IReadOnlyDictionary<string, RasterImage> Read(string directory)
    {
        var indexPath = RequireIndex(directory);
        var masks = new Dictionary<string, RasterImage>(StringComparer.Ordinal);
        int lineNumber = 0;
        foreach (var text in File.ReadLines(indexPath))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            var where = $"{indexPath}:{lineNumber}";
            ConceptMaskLine line;
            try { line = JsonSerializer.Deserialize<ConceptMaskLine>(text, Json) ?? throw new InvalidDataException($"{where}: empty line."); }
            catch (JsonException e) { throw new InvalidDataException($"{where}: not a mask line ({e.Message}).", e); }
            if (line.Id is null || line.FileName is null || line.Sha256 is null)
                throw new InvalidDataException($"{where}: a mask line needs \"id\", \"file_name\" and \"sha256\".");
            if (line.FileName != Path.GetFileName(line.FileName))
                throw new InvalidDataException($"{where}: file_name '{line.FileName}' must name a file inside the folder.");
            var path = Path.Combine(directory, line.FileName);
            if (!File.Exists(path)) throw new InvalidDataException($"{where}: mask file '{line.FileName}' not found.");
            var bytes = File.ReadAllBytes(path);
            if (Digest.OfBytes(bytes) != line.Sha256)
                throw new InvalidDataException($"{where}: '{line.FileName}' changed since the folder was written (its SHA-256 differs from the index's).");
            if (!masks.TryAdd(line.Id, ConceptMasks.FromLearnMask(PngIO.Decode(bytes, path))))
                throw new InvalidDataException($"{where}: a second mask for example '{line.Id}'.");
        }
        return masks;
    }

    /// <summary>
    /// The examples with their concept masks replaced by the folder's (none where the folder has no line). Refuses a
    /// mask of another size than its image, and a folder that names none of these examples (made for other data).
    /// </summary>
    public static IReadOnlyList<TrainingExample> Apply(IReadOnlyDictionary<string, RasterImage> masks, IReadOnlyList<TrainingExample> examples, string source)
    {
        int matched = 0;
        var result = examples.Select(example =>
        {
            if (!masks.TryGetValue(example.Id, out var mask)) return example with { ConceptMask = null };
            if (mask.Width != example.Image.Width || mask.Height != example.Image.Height)
                throw new InvalidDataException($"{source}: the mask of '{example.Id}' is {mask.Width}x{mask.Height}, its image {example.Image.Width}x{example.Image.Height}.");
            matched++;
            return example with { ConceptMask = mask };
        }).ToList();
        if (masks.Count > 0 && matched == 0)
            throw new InvalidDataException($"{source}: none of its {masks.Count} masks names an example of this run's data (ids such as '{masks.Keys.First()}'); it was made for other data.");
        return result;
    }

    static string RequireIndex(string directory)
    {
        var path = IndexPath(directory);
        if (!File.Exists(path))
            throw new FileNotFoundException($"{directory} is not a mask folder: it has no {IndexFileName} (write one with 'excise masks').", path);
        return path;
    }
}
