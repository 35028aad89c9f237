using System.Buffers.Binary;
using System.IO.Compression;
using Excise.Data;

namespace Excise.Tests.Reliability;

/// <summary>
/// A 16-image slice of the real Fashion-MNIST test split as IDX files, gzip-compressed (as Debian ships them) and raw.
/// A case mutates either the images or the labels file; the IDX fields are edited inside the compression, so the
/// reader's own checks are reached, and the gzip bytes themselves are damaged too.
/// </summary>
public sealed class IdxFuzzFormat : FuzzFormat
{
    const string Images = "t10k-images-idx3-ubyte", Labels = "t10k-labels-idx1-ubyte";
    readonly byte[] rawImages, rawLabels;

    public IdxFuzzFormat(string workspace) : base(workspace)
    {
        var slice = FashionMnist.Load(DatasetSplit.Test, limit: 16);
        rawImages = Idx(2051, [slice.Count, 28, 28], slice.SelectMany(item => item.Image.Pixels).ToArray());
        rawLabels = Idx(2049, [slice.Count], slice.Select(item => (byte)item.Label).ToArray());
        Directory.CreateDirectory(Path.Combine(Workspace, "gzip"));
        Directory.CreateDirectory(Path.Combine(Workspace, "raw"));
    }

    public override string Name => "idx";
    public override IReadOnlyList<Type> RejectionTypes { get; } = [typeof(InvalidDataException)];
    public override IReadOnlyList<string> MessageMustName(FuzzCase input) => [Images, Labels];

    static bool IsGzip(FuzzCase input) => input.FileName.EndsWith(".gz");
    string Folder(FuzzCase input) => Path.Combine(Workspace, IsGzip(input) ? "gzip" : "raw");

    public override IEnumerable<FuzzCase> Seeds() =>
    [
        new("gzip images", "none", Images + ".gz", Gzip(rawImages)),
        new("raw labels", "none", Labels, rawLabels),
    ];

    public override FuzzCase Next(Random random)
    {
        bool gzip = random.Next(2) == 0, images = random.Next(2) == 0;
        var raw = images ? rawImages : rawLabels;
        string seed = $"{(gzip ? "gzip" : "raw")} {(images ? "images" : "labels")}";
        string file = (images ? Images : Labels) + (gzip ? ".gz" : "");
        byte[] bytes;
        string what;
        switch (random.Next(gzip ? 10 : 7))
        {
            case < 4:
                (bytes, what) = EditFields(raw, images, random);
                if (gzip) bytes = Gzip(bytes);
                break;
            case < 7:
                (bytes, what) = gzip ? Generic(Gzip(raw), random) : Generic(raw, random);
                break;
            case 7:
                (bytes, what) = Generic(raw, random);
                bytes = Gzip(bytes);
                what = "inside the gzip: " + what;
                break;
            default:
                (bytes, what) = EditGzip(Gzip(raw), random);
                break;
        }
        return new FuzzCase(seed, what, file, bytes);
    }

    public override void Write(FuzzCase input)
    {
        var folder = Folder(input);
        bool gzip = IsGzip(input);
        File.WriteAllBytes(Path.Combine(folder, Images + (gzip ? ".gz" : "")), gzip ? Gzip(rawImages) : rawImages);
        File.WriteAllBytes(Path.Combine(folder, Labels + (gzip ? ".gz" : "")), gzip ? Gzip(rawLabels) : rawLabels);
        File.WriteAllBytes(Path.Combine(folder, input.FileName), input.Bytes);
    }

    // The three ways the code reads a split: the header count, a prefix, the whole split with its end checked.
    public override IReadOnlyList<FuzzLoader> Loaders(FuzzCase input) =>
    [
        new("FashionMnist.CountOf", () => FashionMnist.CountOf(DatasetSplit.Test, Folder(input))),
        new("FashionMnist.Load(limit: 4)", () => FashionMnist.Load(DatasetSplit.Test, limit: 4, directory: Folder(input))),
        new("FashionMnist.Load", () => FashionMnist.Load(DatasetSplit.Test, directory: Folder(input))),
    ];

    static (byte[], string) EditFields(byte[] raw, bool images, Random random)
    {
        var bytes = (byte[])raw.Clone();
        int headerFields = images ? 4 : 2;
        int field = random.Next(headerFields + 2);
        if (field < headerFields)
        {
            int current = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(4 * field));
            int[] candidates = [0, 1, -1, current + 1, current - 1, int.MaxValue, int.MinValue, 0x01000000, 60_000, 2049, 2051, 2048 + 256, 28 * 28, random.Next()];
            int value = random.Pick(candidates);
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 * field), value);
            return (bytes, $"header field {field} {current} → {value}");
        }
        if (field == headerFields)
        {
            int body = 4 * headerFields;
            int position = body + random.Next(bytes.Length - body);
            bytes[position] = images ? (byte)random.Next(256) : (byte)(10 + random.Next(246));
            return (bytes, $"{(images ? "pixel" : "label")} byte at {position} = {bytes[position]}");
        }
        int delta = random.Next(2) == 0 ? -(1 + random.Next(800)) : 1 + random.Next(800);
        var resized = delta < 0 ? bytes[..Math.Max(0, bytes.Length + delta)] : [.. bytes, .. new byte[delta]];
        return (resized, $"body {(delta < 0 ? "shortened" : "extended")} by {Math.Abs(delta)} bytes");
    }

    static (byte[], string) EditGzip(byte[] gzip, Random random)
    {
        var bytes = (byte[])gzip.Clone();
        switch (random.Next(5))
        {
            case 0:
                bytes[3] = (byte)random.Next(256);   // FLG: announces FEXTRA/FNAME/FCOMMENT/FHCRC fields that are not there
                return (bytes, $"gzip flags = {bytes[3]:X2}");
            case 1:
                BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(bytes.Length - 4), random.Next(2) == 0 ? -1 : random.Next());
                return (bytes, "gzip ISIZE footer changed");
            case 2:
                bytes[bytes.Length - 8] ^= 0xFF;
                return (bytes, "gzip CRC footer changed");
            case 3:
                return ([.. bytes, .. bytes], "two gzip members");
            default:
                bytes[2] = (byte)random.Next(256);   // CM: compression method other than deflate
                return (bytes, $"gzip method = {bytes[2]}");
        }
    }

    static byte[] Idx(int magic, int[] dimensions, byte[] body)
    {
        var bytes = new byte[4 + 4 * dimensions.Length + body.Length];
        BinaryPrimitives.WriteInt32BigEndian(bytes, magic);
        for (int i = 0; i < dimensions.Length; i++) BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + 4 * i), dimensions[i]);
        body.CopyTo(bytes, 4 + 4 * dimensions.Length);
        return bytes;
    }

    static byte[] Gzip(byte[] data)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest)) gzip.Write(data);
        return output.ToArray();
    }
}
