using System.Text;
using System.Text.Json.Nodes;
using Excise.Data;
using Excise.Imaging;

namespace Excise.Tests.Reliability;

/// <summary>
/// The metadata.jsonl of an imagefolder dataset, as our exporter writes it and in the plain Hugging Face style.
/// The folder also holds a file that is not an image, a subdirectory and a sibling folder outside it, so mutated
/// file names can point at each of them.
/// </summary>
public sealed class ImageFolderFuzzFormat : FuzzFormat
{
    readonly Dictionary<string, byte[]> seeds = new();
    readonly string folder;

    public ImageFolderFuzzFormat(string workspace) : base(workspace)
    {
        folder = Path.Combine(workspace, "dataset");
        var grey = RasterImage.Blank(8, 8, 1, 90);
        var rgb = new RasterImage(4, 3, 3, Enumerable.Range(0, 36).Select(i => (byte)(i * 7)).ToArray());
        ImageFolderDataset.Write(folder, [
            new TrainingExample("a", grey, "a photo of a sneaker with the Acme logo", 7, new ConceptTruth(true, true)),
            new TrainingExample("b", rgb, "a \"quoted\" caption, ünïcode", null, ConceptTruth.Clean),
            new TrainingExample("c", grey, "a bag", 8, new ConceptTruth(true, false)),
        ]);
        seeds["exported"] = File.ReadAllBytes(Path.Combine(folder, ImageFolderDataset.MetadataFileName));
        seeds["hugging face"] = Encoding.UTF8.GetBytes("{\"file_name\": \"a.png\", \"text\": \"a thing\", \"extra\": [1, 2]}\n\n{\"file_name\": \"b.png\", \"text\": \"another\"}\r\n");
        File.WriteAllText(Path.Combine(folder, "notes.txt"), "not an image");
        Directory.CreateDirectory(Path.Combine(folder, "sub"));
        PngIO.Save(grey, Path.Combine(workspace, "outside.png"));
    }

    public override string Name => "metadata.jsonl";
    public override IReadOnlyList<Type> RejectionTypes { get; } = [typeof(InvalidDataException)];
    public override IReadOnlyList<string> MessageMustName(FuzzCase input) => [ImageFolderDataset.MetadataFileName];

    public override IEnumerable<FuzzCase> Seeds() => seeds.Select(kv => new FuzzCase(kv.Key, "none", ImageFolderDataset.MetadataFileName, kv.Value));

    public override void Write(FuzzCase input) => File.WriteAllBytes(Path.Combine(folder, input.FileName), input.Bytes);

    public override IReadOnlyList<FuzzLoader> Loaders(FuzzCase input) => [new("ImageFolderDataset.Read", () => ImageFolderDataset.Read(folder))];

    static readonly string[] HostileFileNames =
    [
        "../outside.png", "/etc/passwd", "", ".", "sub", "sub/", "notes.txt", "missing.png", "a.png\u0000.txt", "a.png/", "./a.png",
        "sub/../a.png", "sub/../../outside.png", "//a.png", "a.png ", "A.PNG", new string('x', 5000) + ".png", "\\a.png", "~/a.png",
    ];

    public override FuzzCase Next(Random random)
    {
        var seed = random.Pick(seeds.Keys.ToList());
        var bytes = seeds[seed];
        var (mutated, what) = random.Next(10) switch
        {
            < 3 => Generic(bytes, random),
            < 7 => EditLine(bytes, random),
            _ => EditLines(bytes, random),
        };
        return new FuzzCase(seed, what, ImageFolderDataset.MetadataFileName, mutated);
    }

    static List<string> Lines(byte[] bytes) => Encoding.UTF8.GetString(bytes).Split('\n').ToList();

    static byte[] Join(IEnumerable<string> lines) => Encoding.UTF8.GetBytes(string.Join('\n', lines));

    static (byte[], string) EditLine(byte[] bytes, Random random)
    {
        var lines = Lines(bytes);
        var candidates = Enumerable.Range(0, lines.Count).Where(i => lines[i].TrimStart().StartsWith('{')).ToList();
        int index = random.Pick(candidates);
        var line = JsonNode.Parse(lines[index])!.AsObject();
        string what;
        switch (random.Next(4))
        {
            case 0:
                var name = random.Pick(HostileFileNames);
                line["file_name"] = name;
                what = $"line {index + 1}: file_name = '{(name.Length > 40 ? name[..40] + "…" : name)}'";
                break;
            case 1:
                var field = random.Pick(new[] { "file_name", "text", "id", "label", "stamped", "caption_mentions_concept" });
                var value = random.Next(3) == 0 ? DomainValue(field, random) : JsonMutations.HostileValue(random);
                line[field] = value;
                var shown = JsonMutations.Serialize(value);
                what = $"line {index + 1}: {field} = {(shown.Length > 40 ? shown[..40] + "…" : shown)}";
                break;
            default:
                string text;
                (text, what) = JsonMutations.Mutate(line, random);
                lines[index] = text;
                return (Join(lines), $"line {index + 1}: {what}");
        }
        lines[index] = JsonMutations.Serialize(line);
        return (Join(lines), what);
    }

    static JsonNode? DomainValue(string field, Random random) => field switch
    {
        "label" => random.Pick(new JsonNode?[] { -1, 10, 255, 1e30, 2147483648L, 1.5, "3" }),
        "stamped" or "caption_mentions_concept" => random.Pick(new JsonNode?[] { "true", 1, 0, "yes" }),
        _ => random.Pick(new JsonNode?[] { "", " ", "\u0000", new string('w', 100_000) }),
    };

    static (byte[], string) EditLines(byte[] bytes, Random random)
    {
        var lines = Lines(bytes);
        int index = random.Next(lines.Count);
        switch (random.Next(7))
        {
            case 0: lines.RemoveAt(index); return (Join(lines), $"removed line {index + 1}");
            case 1: lines.Insert(index, lines[index]); return (Join(lines), $"repeated line {index + 1}");
            case 2:
                var garbage = random.Pick(new[] { "{", "}", "null", "[]", "\"text\"", "42", "{\"file_name\": \"a.png\", \"text\": \"x\"} {\"file_name\": \"b.png\"}", "\t", new string('[', 10_000) });
                lines.Insert(index, garbage);
                return (Join(lines), $"inserted line '{(garbage.Length > 40 ? garbage[..40] + "…" : garbage)}'");
            case 3: return ([0xEF, 0xBB, 0xBF, .. bytes], "UTF-8 byte-order mark");
            case 4: return (Encoding.UTF8.GetBytes(string.Join("\r\n", lines)), "CRLF line ends");
            case 5:
                var line = Encoding.UTF8.GetBytes(lines[index]);
                if (line.Length > 0) line[random.Next(line.Length)] = (byte)(0x80 + random.Next(0x80));
                return ([.. Join(lines.Take(index)), .. (index > 0 ? "\n"u8.ToArray() : []), .. line, .. "\n"u8.ToArray(), .. Join(lines.Skip(index + 1))], $"invalid UTF-8 in line {index + 1}");
            default:
                return (Join(lines.Select(l => l.Replace("\"file_name\"", "\"File_Name\""))), "file_name key in other case");
        }
    }
}
