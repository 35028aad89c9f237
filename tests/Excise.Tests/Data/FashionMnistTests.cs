using System.Buffers.Binary;
using System.IO.Compression;
using Excise.Data;

namespace Excise.Tests.Data;

public class FashionMnistTests
{
    [Fact]
    public void Real_file_headers_declare_60000_train_and_10000_test_images()
    {
        Assert.Equal(FashionMnist.TrainCount, FashionMnist.CountOf(DatasetSplit.Train));
        Assert.Equal(FashionMnist.TestCount, FashionMnist.CountOf(DatasetSplit.Test));
    }

    [Fact]
    public void Real_labels_start_as_published_and_are_balanced()
    {
        var train = FashionMnist.LoadLabels(DatasetSplit.Train);
        var test = FashionMnist.LoadLabels(DatasetSplit.Test);
        // First labels of the published files: ankle boot, t-shirt, t-shirt, dress, ... / ankle boot, pullover, trouser, ...
        Assert.Equal(new byte[] { 9, 0, 0, 3, 0, 2, 7, 2, 5, 5 }, train[..10]);
        Assert.Equal(new byte[] { 9, 2, 1, 1, 6, 1, 4, 6, 5, 7 }, test[..10]);
        Assert.All(train.GroupBy(label => label), group => Assert.Equal(6000, group.Count()));
        Assert.All(test.GroupBy(label => label), group => Assert.Equal(1000, group.Count()));
    }

    [Fact]
    public void Subset_of_real_images_has_28x28_grey_pixels_in_full_range_and_matching_labels()
    {
        var items = FashionMnist.Load(DatasetSplit.Train, limit: 100);
        var labels = FashionMnist.LoadLabels(DatasetSplit.Train);
        Assert.Equal(100, items.Count);
        Assert.Equal(Enumerable.Range(0, 100), items.Select(item => item.Index));
        Assert.All(items, item =>
        {
            Assert.Equal((28, 28, 1), (item.Image.Width, item.Image.Height, item.Image.Channels));
            Assert.Equal(labels[item.Index], item.Label);
            Assert.Equal(0, item.Image.Pixels.Min()); // black background
            Assert.True(item.Image.Pixels.Max() > 100, $"image {item.Index} has no bright pixel");
        });
        Assert.Equal(255, items.Max(item => item.Image.Pixels.Max()));
        Assert.Equal("fmnist-train-00042", items[42].Id(DatasetSplit.Train));
    }

    [Fact]
    public void Per_class_limit_takes_the_first_images_of_each_class_in_file_order()
    {
        var items = FashionMnist.Load(DatasetSplit.Test, perClassLimit: 3);
        var labels = FashionMnist.LoadLabels(DatasetSplit.Test);
        Assert.Equal(30, items.Count);
        Assert.All(items.GroupBy(item => item.Label), group => Assert.Equal(3, group.Count()));
        foreach (var group in items.GroupBy(item => item.Label))
        {
            var expected = Enumerable.Range(0, labels.Length).Where(i => labels[i] == group.Key).Take(3);
            Assert.Equal(expected, group.Select(item => item.Index));
        }
    }

    [Fact]
    public void Full_test_split_verifies()
    {
        var all = FashionMnist.Load(DatasetSplit.Test);
        Assert.Equal(10_000, all.Count);
        Assert.Equal(9999, all[^1].Index);
    }

    public enum Corruption { Truncated, WrongImageMagic, WrongLabelMagic, NotGzip, CountMismatch, WrongImageSize, TrailingBytes, CorruptDeflate }

    [Theory]
    [InlineData(Corruption.Truncated, "images", "truncated")]
    [InlineData(Corruption.WrongImageMagic, "images", "magic")]
    [InlineData(Corruption.WrongLabelMagic, "labels", "magic")]
    [InlineData(Corruption.NotGzip, "images", "not a gzip")]
    [InlineData(Corruption.CountMismatch, "images", "labels")]
    [InlineData(Corruption.WrongImageSize, "images", "32x28")]
    [InlineData(Corruption.TrailingBytes, "images", "longer than its header")]
    [InlineData(Corruption.CorruptDeflate, "images", "")]
    public void Corrupt_files_raise_InvalidDataException_naming_the_file(Corruption corruption, string badFile, string messagePart)
    {
        using var temp = new TempDirectory();
        var real = FashionMnist.Load(DatasetSplit.Test, limit: 50);
        var images = real.Select(item => item.Image.Pixels).ToList();
        var labels = real.Select(item => (byte)item.Label).ToList();
        var imagesPath = temp.File("t10k-images-idx3-ubyte.gz");
        var labelsPath = temp.File("t10k-labels-idx1-ubyte.gz");

        int imageMagic = corruption == Corruption.WrongImageMagic ? 2049 : 2051;
        int labelMagic = corruption == Corruption.WrongLabelMagic ? 2051 : 2049;
        int rows = corruption == Corruption.WrongImageSize ? 32 : 28;
        if (corruption == Corruption.CountMismatch) labels.RemoveAt(labels.Count - 1);
        var imageCount = images.Count;
        if (corruption == Corruption.TrailingBytes) images.Add(new byte[28 * 28]);

        var imageFile = Gzip(Idx(imageMagic, [imageCount, rows, 28], images.SelectMany(pixels => pixels).ToArray()));
        if (corruption == Corruption.Truncated) imageFile = imageFile[..(imageFile.Length / 2)];
        if (corruption == Corruption.NotGzip) imageFile = Idx(imageMagic, [imageCount, rows, 28], images.SelectMany(p => p).ToArray());
        if (corruption == Corruption.CorruptDeflate)
            for (int i = 20; i < imageFile.Length - 8; i += 7) imageFile[i] ^= 0x5A;
        File.WriteAllBytes(imagesPath, imageFile);
        File.WriteAllBytes(labelsPath, Gzip(Idx(labelMagic, [labels.Count], labels.ToArray())));

        var error = Assert.Throws<InvalidDataException>(() => FashionMnist.Load(DatasetSplit.Test, directory: temp.Path));
        Assert.Contains(badFile == "images" ? imagesPath : labelsPath, error.Message);
        Assert.Contains(messagePart, error.Message);
    }

    [Fact]
    public void Intact_synthetic_copy_loads_so_the_corruption_cases_fail_for_their_own_reason()
    {
        using var temp = new TempDirectory();
        var real = FashionMnist.Load(DatasetSplit.Test, limit: 50);
        File.WriteAllBytes(temp.File("t10k-images-idx3-ubyte.gz"), Gzip(Idx(2051, [50, 28, 28], real.SelectMany(i => i.Image.Pixels).ToArray())));
        File.WriteAllBytes(temp.File("t10k-labels-idx1-ubyte.gz"), Gzip(Idx(2049, [50], real.Select(i => (byte)i.Label).ToArray())));
        var copy = FashionMnist.Load(DatasetSplit.Test, directory: temp.Path);
        Assert.Equal(50, copy.Count);
        Assert.True(copy[49].Image.SameContentAs(real[49].Image));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_huge_declared_label_count_is_reported_as_truncation_without_allocating_it(bool gzip)
    {
        using var temp = new TempDirectory();
        var real = FashionMnist.Load(DatasetSplit.Test, limit: 4);
        var images = Idx(2051, [4, 28, 28], real.SelectMany(i => i.Image.Pixels).ToArray());
        var labels = Idx(2049, [int.MaxValue], real.Select(i => (byte)i.Label).ToArray());
        var suffix = gzip ? ".gz" : "";
        File.WriteAllBytes(temp.File("t10k-images-idx3-ubyte" + suffix), gzip ? Gzip(images) : images);
        File.WriteAllBytes(temp.File("t10k-labels-idx1-ubyte" + suffix), gzip ? Gzip(labels) : labels);

        long before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<InvalidDataException>(() => FashionMnist.Load(DatasetSplit.Test, limit: 2, directory: temp.Path));
        Assert.Contains("truncated", error.Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 8 << 20, "the declared count was allocated before the data was read");
    }

    [Fact]
    public void Missing_directory_tells_how_to_install_the_dataset()
    {
        var error = Assert.Throws<DirectoryNotFoundException>(() => FashionMnist.Load(DatasetSplit.Train, limit: 1, directory: "/nonexistent/fmnist"));
        Assert.Contains("apt-get install dataset-fashion-mnist", error.Message);
        Assert.Contains("/nonexistent/fmnist", error.Message);
    }

    private static byte[] Idx(int magic, int[] dimensions, byte[] body)
    {
        var bytes = new byte[4 + 4 * dimensions.Length + body.Length];
        BinaryPrimitives.WriteInt32BigEndian(bytes, magic);
        for (int i = 0; i < dimensions.Length; i++) BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + 4 * i), dimensions[i]);
        body.CopyTo(bytes, 4 + 4 * dimensions.Length);
        return bytes;
    }

    private static byte[] Gzip(byte[] data)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest)) gzip.Write(data);
        return output.ToArray();
    }
}
