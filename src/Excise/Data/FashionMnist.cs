using System.Buffers.Binary;
using System.IO.Compression;
using Excise.Imaging;

namespace Excise.Data;

/// <summary>One Fashion-MNIST image with its position in the split (the position makes ids stable across subsets).</summary>
public sealed record FashionMnistItem(int Index, RasterImage Image, int Label)
{
    public string Id(DatasetSplit split) => FashionMnist.IdFor(split, Index);
}

/// <summary>Reads Fashion-MNIST from its gzip IDX files (Debian package dataset-fashion-mnist).</summary>
public static class FashionMnist
{
    public const string DefaultDirectory = "/usr/share/datasets/fashion-mnist";
    public const int ImageSide = 28;
    public const int TrainCount = 60_000;
    public const int TestCount = 10_000;
    internal const int ImageMagic = 2051;
    internal const int LabelMagic = 2049;
    private const int ImageBytes = ImageSide * ImageSide;

    public static string IdFor(DatasetSplit split, int index) => $"fmnist-{(split == DatasetSplit.Train ? "train" : "test")}-{index:D5}";

    public static string ImagesFile(DatasetSplit split, string? directory = null) =>
        FindFile(directory ?? DefaultDirectory, split == DatasetSplit.Train ? "train-images-idx3-ubyte" : "t10k-images-idx3-ubyte");

    public static string LabelsFile(DatasetSplit split, string? directory = null) =>
        FindFile(directory ?? DefaultDirectory, split == DatasetSplit.Train ? "train-labels-idx1-ubyte" : "t10k-labels-idx1-ubyte");

    /// <summary>Number of images the split's header declares (reads 16 bytes, no full decompression).</summary>
    public static int CountOf(DatasetSplit split, string? directory = null)
    {
        var path = ImagesFile(split, directory);
        using var stream = OpenIdx(path);
        return ReadImageHeader(stream, path);
    }

    /// <summary>Loads all labels of a split (small: 60 kB for train). Validates header, count and length exactly.</summary>
    public static byte[] LoadLabels(DatasetSplit split, string? directory = null)
    {
        var path = LabelsFile(split, directory);
        using var stream = OpenIdx(path);
        var header = ReadExactly(stream, 8, path, "label header");
        int magic = BinaryPrimitives.ReadInt32BigEndian(header);
        if (magic != LabelMagic)
            throw new InvalidDataException($"{path}: wrong magic number {magic} for an IDX label file (expected {LabelMagic}).");
        int count = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(4));
        if (count < 0) throw new InvalidDataException($"{path}: negative label count {count}.");
        var labels = ReadDeclared(stream, count, path, $"{count} labels");
        EnsureEnd(stream, path, 8L + count);
        for (int i = 0; i < labels.Length; i++)
            if (labels[i] >= FashionMnistClasses.Count)
                throw new InvalidDataException($"{path}: label {labels[i]} at index {i} is outside 0..9.");
        return labels;
    }

    /// <summary>
    /// Loads a split, optionally only the first <paramref name="limit"/> images and/or at most <paramref name="perClassLimit"/>
    /// per class (taken in file order). Decompression stops as soon as the subset is complete, so small subsets are cheap;
    /// a full load also checks that nothing follows the last image.
    /// </summary>
    public static IReadOnlyList<FashionMnistItem> Load(DatasetSplit split, int? limit = null, int? perClassLimit = null, string? directory = null)
    {
        if (limit is < 0) throw new ArgumentOutOfRangeException(nameof(limit), $"limit must be >= 0, got {limit}.");
        if (perClassLimit is < 0) throw new ArgumentOutOfRangeException(nameof(perClassLimit), $"perClassLimit must be >= 0, got {perClassLimit}.");
        var labels = LoadLabels(split, directory);
        var path = ImagesFile(split, directory);
        using var stream = OpenIdx(path);
        int count = ReadImageHeader(stream, path);
        if (count != labels.Length)
            throw new InvalidDataException($"{path}: holds {count} images but {LabelsFile(split, directory)} holds {labels.Length} labels.");

        int wanted = Math.Min(limit ?? count, perClassLimit is { } perClass ? perClass * FashionMnistClasses.Count : count);
        var taken = new int[FashionMnistClasses.Count];
        // The header's count is not trusted for allocation: the list grows as images actually arrive.
        var items = new List<FashionMnistItem>(Math.Min(wanted, TrainCount));
        var buffer = new byte[ImageBytes];
        for (int index = 0; index < count && items.Count < wanted; index++)
        {
            FillExactly(stream, buffer, path, $"image {index} of {count}");
            int label = labels[index];
            if (perClassLimit is { } cap && taken[label] >= cap) continue;
            taken[label]++;
            items.Add(new FashionMnistItem(index, new RasterImage(ImageSide, ImageSide, 1, (byte[])buffer.Clone()), label));
        }
        if (items.Count == count) EnsureEnd(stream, path, 16L + (long)count * ImageBytes);
        return items;
    }

    private static string FindFile(string directory, string stem)
    {
        if (!Directory.Exists(directory))
            throw new DirectoryNotFoundException(
                $"Fashion-MNIST directory '{directory}' does not exist. Install it with 'apt-get install dataset-fashion-mnist' (files go to {DefaultDirectory}) or pass the folder holding {stem}.gz.");
        foreach (var candidate in new[] { stem + ".gz", stem, stem.Replace("-idx", ".idx") + ".gz" })
        {
            var path = Path.Combine(directory, candidate);
            if (File.Exists(path)) return path;
        }
        throw new FileNotFoundException(
            $"Fashion-MNIST file {stem}.gz not found in '{directory}'. Install it with 'apt-get install dataset-fashion-mnist'.",
            Path.Combine(directory, stem + ".gz"));
    }

    /// <summary>Opens a gzip IDX file (or a plain one, when the name has no .gz), failing early and clearly if it is not gzip.</summary>
    private static Stream OpenIdx(string path)
    {
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        if (!path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase)) return file;
        Span<byte> magic = stackalloc byte[2];
        int read = file.ReadAtLeast(magic, 2, throwOnEndOfStream: false);
        if (read < 2 || magic[0] != 0x1F || magic[1] != 0x8B)
        {
            file.Dispose();
            throw new InvalidDataException($"{path}: not a gzip file (expected bytes 1F 8B at the start).");
        }
        file.Position = 0;
        return new BufferedStream(new GZipStream(file, CompressionMode.Decompress), 1 << 16);
    }

    private static int ReadImageHeader(Stream stream, string path)
    {
        var header = ReadExactly(stream, 16, path, "image header");
        int magic = BinaryPrimitives.ReadInt32BigEndian(header);
        if (magic != ImageMagic)
            throw new InvalidDataException($"{path}: wrong magic number {magic} for an IDX image file (expected {ImageMagic}).");
        int count = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(4));
        int rows = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(8));
        int columns = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(12));
        if (rows != ImageSide || columns != ImageSide)
            throw new InvalidDataException($"{path}: images are {rows}x{columns}, expected {ImageSide}x{ImageSide}.");
        if (count < 0) throw new InvalidDataException($"{path}: negative image count {count}.");
        return count;
    }

    /// <summary>
    /// Reads the <paramref name="length"/> bytes a header declares, in chunks, so a corrupt or hostile count costs only
    /// as much memory as the file really holds before the truncation is reported.
    /// </summary>
    private static byte[] ReadDeclared(Stream stream, int length, string path, string what)
    {
        const int chunk = 1 << 16;
        if (length <= chunk) return ReadExactly(stream, length, path, what);
        using var collected = new MemoryStream();
        var buffer = new byte[chunk];
        while (collected.Length < length)
        {
            int wanted = (int)Math.Min(chunk, length - collected.Length);
            int read;
            try { read = stream.ReadAtLeast(buffer.AsSpan(0, wanted), wanted, throwOnEndOfStream: false); }
            catch (InvalidDataException inner) { throw new InvalidDataException($"{path}: corrupt gzip data while reading {what}: {inner.Message}", inner); }
            collected.Write(buffer, 0, read);
            if (read < wanted)
                throw new InvalidDataException($"{path}: file is truncated: ended after {collected.Length} of {length} bytes of {what}.");
        }
        return collected.ToArray();
    }

    private static byte[] ReadExactly(Stream stream, int length, string path, string what)
    {
        var buffer = new byte[length];
        FillExactly(stream, buffer, path, what);
        return buffer;
    }

    private static void FillExactly(Stream stream, byte[] buffer, string path, string what)
    {
        int read;
        try
        {
            read = stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        }
        catch (InvalidDataException inner)
        {
            throw new InvalidDataException($"{path}: corrupt gzip data while reading {what}: {inner.Message}", inner);
        }
        if (read < buffer.Length)
            throw new InvalidDataException($"{path}: file is truncated: ended after {read} of {buffer.Length} bytes of {what}.");
    }

    private static void EnsureEnd(Stream stream, string path, long expectedLength)
    {
        int extra;
        try { extra = stream.ReadByte(); }
        catch (InvalidDataException inner) { throw new InvalidDataException($"{path}: corrupt gzip data at the end: {inner.Message}", inner); }
        if (extra != -1)
            throw new InvalidDataException($"{path}: longer than its header says ({expectedLength} bytes expected); the header count is wrong or the file is corrupt.");
    }
}
