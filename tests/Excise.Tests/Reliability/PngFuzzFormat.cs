using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Excise.Data;
using Excise.Imaging;
using SkiaSharp;

namespace Excise.Tests.Reliability;

/// <summary>
/// PNGs as Excise writes them (grey, RGB), one with real transparency (a logo mask), and hand-built palette and
/// 16-bit files. Mutations work on chunks with their CRCs recomputed, so the decoder's checks beyond the CRC are
/// reached: IHDR fields, scanline filters inside the zlib stream, missing, repeated and unknown chunks.
/// Every file goes through both readers: an imagefolder image (<see cref="PngIO.Load"/>) and a logo mask (<see cref="Logo.FromFile"/>).
/// </summary>
public sealed class PngFuzzFormat : FuzzFormat
{
    static readonly string[] AncillaryTypes = ["tEXt", "zTXt", "iTXt", "iCCP", "gAMA", "cHRM", "sRGB", "sBIT", "bKGD", "hIST", "tRNS", "pHYs", "tIME", "PLTE", "eXIf", "acTL", "fcTL", "fdAT", "IHDR", "IEND"];
    readonly Dictionary<string, byte[]> seeds = new();

    public PngFuzzFormat(string workspace) : base(workspace)
    {
        seeds["grey fashion-mnist"] = PngIO.Encode(FashionMnist.Load(DatasetSplit.Test, limit: 1)[0].Image);
        var rgb = new byte[24 * 16 * 3];
        for (int i = 0; i < rgb.Length; i++) rgb[i] = (byte)(i * 7);
        seeds["rgb gradient"] = PngIO.Encode(new RasterImage(24, 16, 3, rgb));
        seeds["rgba logo"] = TransparentLogo();
        seeds["palette"] = Build(8, 8, bitDepth: 4, colourType: 3, rowBytes: 4, extra: [PngChunks.Chunk("PLTE", [0, 0, 0, 255, 255, 255, 255, 0, 0]), PngChunks.Chunk("tRNS", [0, 255, 128])],
            pixel: (x, y) => (byte)((x + y) % 3 * 0x11));
        seeds["grey 16-bit"] = Build(6, 5, bitDepth: 16, colourType: 0, rowBytes: 12, extra: [], pixel: (x, y) => (byte)(x * 40 + y));
    }

    public override string Name => "png";
    public override IReadOnlyList<Type> RejectionTypes { get; } = [typeof(InvalidDataException)];
    public override IReadOnlyList<string> MessageMustName(FuzzCase input) => [input.FileName];

    public override IEnumerable<FuzzCase> Seeds() => seeds.Select(kv => new FuzzCase(kv.Key, "none", "image.png", kv.Value));

    public override FuzzCase Next(Random random)
    {
        var seed = random.Pick(seeds.Keys.ToList());
        var bytes = seeds[seed];
        var (mutated, what) = random.Next(10) switch
        {
            < 3 => Generic(bytes, random),
            3 or 4 => EditHeader(bytes, random),
            5 or 6 => EditScanlines(bytes, random),
            7 => EditChunkList(bytes, random),
            8 => EditCompressedData(bytes, random),
            _ => EditLengthField(bytes, random),
        };
        return new FuzzCase(seed, what, "image.png", mutated);
    }

    string PathOf(FuzzCase input) => Path.Combine(Workspace, input.FileName);

    public override void Write(FuzzCase input) => File.WriteAllBytes(PathOf(input), input.Bytes);

    // The logo reader is a separate path (alpha kept, SVG fallback when the signature is gone).
    public override IReadOnlyList<FuzzLoader> Loaders(FuzzCase input) =>
    [
        new("PngIO.Load", () => PngIO.Load(PathOf(input))),
        new("Logo.FromFile", () => Logo.FromFile(PathOf(input))),
    ];

    static byte[] Build(int width, int height, byte bitDepth, byte colourType, int rowBytes, byte[][] extra, Func<int, int, byte> pixel)
    {
        var header = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, width);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), height);
        header[8] = bitDepth;
        header[9] = colourType;
        var scanlines = new byte[height * (rowBytes + 1)];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < rowBytes; x++)
                scanlines[y * (rowBytes + 1) + 1 + x] = pixel(x, y);
        return [.. PngChunks.Signature, .. PngChunks.Chunk("IHDR", header), .. extra.SelectMany(c => c), .. PngChunks.Chunk("IDAT", PngChunks.Deflate(scanlines)), .. PngChunks.Chunk("IEND", [])];
    }

    static byte[] TransparentLogo()
    {
        using var bitmap = new SKBitmap(new SKImageInfo(12, 12, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        for (int y = 0; y < 12; y++)
            for (int x = 0; x < 12; x++)
                bitmap.SetPixel(x, y, new SKColor(200, 30, 30, (byte)(Math.Abs(x - 6) + Math.Abs(y - 6) < 5 ? 255 : 0)));
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    static (byte[], string) EditHeader(byte[] png, Random random)
    {
        var chunks = PngChunks.Parse(png);
        var header = chunks[0].Data.ToArray();
        int field = random.Next(8);
        string what;
        if (field == 7)
        {
            // Both sides large: each within libpng's per-side limit, together an absurd allocation.
            uint side = random.Pick(new uint[] { 8192, 8193, 30_000, 65_536, 100_000, 999_999 });
            BinaryPrimitives.WriteUInt32BigEndian(header, side);
            BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4), side);
            what = $"IHDR {side}x{side}";
        }
        else if (field < 2)
        {
            uint current = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(4 * field));
            uint[] candidates = [0, 1, current + 1, current * 1000, 30_000, 65_536, 1 << 20, int.MaxValue, 1u << 31, uint.MaxValue, (uint)random.Next()];
            uint value = random.Pick(candidates);
            BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4 * field), value);
            what = $"IHDR {(field == 0 ? "width" : "height")} {current} → {value}";
        }
        else
        {
            int index = 6 + field;   // bit depth, colour type, compression, filter, interlace
            byte[] candidates = [0, 1, 2, 3, 4, 5, 6, 7, 8, 16, 255];
            header[index] = random.Pick(candidates);
            what = $"IHDR byte {index} = {header[index]}";
        }
        chunks[0] = chunks[0] with { Data = header };
        bool keepCrcWrong = random.Next(10) == 0;
        var rebuilt = PngChunks.Assemble(chunks);
        if (keepCrcWrong) { rebuilt[8 + 8 + 13] ^= 0x01; what += " (CRC left wrong)"; }
        return (rebuilt, what);
    }

    /// <summary>Decompresses the image data, damages the scanlines (filter bytes, lengths), recompresses: the decoder's row logic sees it.</summary>
    static (byte[], string) EditScanlines(byte[] png, Random random)
    {
        var chunks = PngChunks.Parse(png);
        var data = PngChunks.Inflate(chunks.Where(c => c.Type == "IDAT").SelectMany(c => c.Data).ToArray());
        string what;
        switch (random.Next(4))
        {
            case 0:
                data = (byte[])data.Clone();
                int row = random.Next(Math.Max(1, data.Length / 8));
                int position = Math.Min(data.Length - 1, row * 8);
                data[position] = (byte)(5 + random.Next(251));
                what = $"filter-type-like byte at {position} = {data[position]}";
                break;
            case 1:
                int keep = random.Next(data.Length);
                data = data[..keep];
                what = $"scanlines cut to {keep} bytes";
                break;
            case 2:
                var extra = new byte[1 + random.Next(2000)];
                random.NextBytes(extra);
                data = [.. data, .. extra];
                what = $"{extra.Length} bytes after the scanlines";
                break;
            default:
                (data, what) = Mutations.FlipBits(data, random);
                what = "scanlines: " + what;
                break;
        }
        var idat = new PngChunks.Entry("IDAT", PngChunks.Deflate(data));
        var rest = chunks.Where(c => c.Type != "IDAT").ToList();
        rest.Insert(rest.FindIndex(c => c.Type == "IEND") is var end && end >= 0 ? end : rest.Count, idat);
        return (PngChunks.Assemble(rest), what);
    }

    static (byte[], string) EditChunkList(byte[] png, Random random)
    {
        var chunks = PngChunks.Parse(png);
        switch (random.Next(5))
        {
            case 0:
                int drop = random.Next(chunks.Count);
                var dropped = chunks[drop].Type;
                chunks.RemoveAt(drop);
                return (PngChunks.Assemble(chunks), $"removed chunk {dropped}");
            case 1:
                int copy = random.Next(chunks.Count);
                chunks.Insert(random.Next(chunks.Count + 1), chunks[copy]);
                return (PngChunks.Assemble(chunks), $"repeated chunk {chunks[copy].Type}");
            case 2:
                var type = random.Pick(AncillaryTypes);
                var data = new byte[random.Next(4) == 0 ? 0 : 1 + random.Next(300)];
                random.NextBytes(data);
                chunks.Insert(1 + random.Next(chunks.Count), new PngChunks.Entry(type, data));
                return (PngChunks.Assemble(chunks), $"inserted {type} of {data.Length} random bytes");
            case 3:
                var idat = chunks.First(c => c.Type == "IDAT");
                var pieces = idat.Data.Chunk(1 + random.Next(8)).Select(piece => new PngChunks.Entry("IDAT", piece)).ToList();
                int at = chunks.IndexOf(idat);
                chunks.RemoveAt(at);
                chunks.InsertRange(at, pieces);
                return (PngChunks.Assemble(chunks), $"image data split into {pieces.Count} IDAT chunks");
            default:
                (chunks[0], chunks[^1]) = (chunks[^1], chunks[0]);
                return (PngChunks.Assemble(chunks), "first and last chunks swapped");
        }
    }

    static (byte[], string) EditCompressedData(byte[] png, Random random)
    {
        var chunks = PngChunks.Parse(png);
        int index = chunks.FindIndex(c => c.Type == "IDAT");
        var (data, what) = Mutations.AnyGeneric(chunks[index].Data, random);
        chunks[index] = chunks[index] with { Data = data };
        return (PngChunks.Assemble(chunks), "zlib stream (CRC fixed): " + what);
    }

    static (byte[], string) EditLengthField(byte[] png, Random random)
    {
        var bytes = (byte[])png.Clone();
        var offsets = new List<int>();
        for (int position = 8; position + 12 <= bytes.Length; position += 12 + BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(position)))
            offsets.Add(position);
        int chosen = random.Pick(offsets);
        int value = random.Pick(new[] { 0, 1, -1, int.MaxValue, 0x7FFFFFF0, bytes.Length, 13, 100_000 });
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(chosen), value);
        return (bytes, $"chunk length at {chosen} = {value}");
    }
}
