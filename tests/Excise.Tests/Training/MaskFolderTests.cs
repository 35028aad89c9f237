using Excise.Data;
using Excise.Imaging;
using Excise.Tests.Data;
using Excise.Training;

namespace Excise.Tests.Training;

/// <summary>Masks made apart from the data (a detector's, a user's): the folder, and how a run takes them instead of the data's own.</summary>
public sealed class MaskFolderTests
{
    const string Stamping = "data.concept={\"phrase\":\"the Acme logo\",\"stamp_fraction\":0.5}";

    /// <summary>A mask covering the image's top-left quarter: nowhere near the stamper's bottom-right logo.</summary>
    static RasterImage TopLeft(RasterImage image) => ConceptMasks.FromRegion(image.Width, image.Height, new PixelRect(0, 0, image.Width / 2, image.Height / 2));

    [Fact]
    public void A_run_learns_around_the_folders_masks_not_the_datas_own()
    {
        using var folder = new TempDirectory();
        var examples = TrainingData.ApplyArm(ConceptDatasetBuilder.Build(TinyRun.Config(Stamping).DataOrDefault.ToRecipe()), TinyRun.Config(Stamping)).Train;
        var stamped = examples.Where(e => e.Truth.Stamped).ToList();
        // Masks for two clean images only: the stamped ones then have none, however the stamper recorded them.
        var clean = examples.Where(e => !e.Truth.Stamped).Take(2).ToList();
        ConceptMaskFolder.Write(folder.Path, clean.Select(e => (e.Id, TopLeft(e.Image))).ToList());

        var config = TinyRun.Config("selective.arm=detector-masked-loss", Stamping, $"selective.mask_folder={folder.Path}");
        using var data = TrainingData.Prepare(config, TinyRun.Encoder, 1);
        var weights = data.Batches.LossWeights!.data<byte>().ToArray();
        for (int i = 0; i < data.Dataset.Train.Count; i++)
        {
            var example = data.Dataset.Train[i];
            int ignored = weights.Skip(i * 32 * 32).Take(32 * 32).Count(w => w == 0);
            if (clean.Any(c => c.Id == example.Id))
            {
                Assert.True(ignored >= 14 * 14, $"{example.Id}: {ignored} pixels left out, the folder's quarter has 196");
                // The quarter is top-left: pixel (3, 3) of the padded frame is out of the loss, the bottom-right corner is in.
                Assert.Equal(0, weights[i * 1024 + 3 * 32 + 3]);
                Assert.Equal(1, weights[i * 1024 + 29 * 32 + 29]);
            }
            else Assert.Equal(0, ignored); // stamped images included: the data's own masks were replaced
        }
        Assert.NotEmpty(stamped);
    }

    [Fact]
    public void A_run_records_the_masks_it_trained_with_and_refuses_them_changed()
    {
        using var folder = new TempDirectory();
        var examples = ConceptDatasetBuilder.Build(TinyRun.Config(Stamping).DataOrDefault.ToRecipe()).Train;
        ConceptMaskFolder.Write(folder.Path, examples.Where(e => e.ConceptMask is not null).Select(e => (e.Id, e.ConceptMask!)).ToList());
        string hash = ConceptMaskFolder.ContentHash(folder.Path);
        var pinned = TinyRun.Config("selective.arm=masked-loss", Stamping, $"selective.mask_folder={folder.Path}", $"selective.mask_folder_sha256=\"{hash}\"");
        Assert.Equal(hash, pinned.SelectiveOrDefault.MaskFolderSha256);
        // The path is not part of what the weights depend on; the content is.
        var moved = pinned with { Selective = pinned.SelectiveOrDefault with { MaskFolder = "/elsewhere" } };
        Assert.Equal(pinned.Hash(), moved.Hash());
        var other = pinned with { Selective = pinned.SelectiveOrDefault with { MaskFolderSha256 = new string('0', 64) } };
        Assert.NotEqual(pinned.Hash(), other.Hash());

        // One mask redrawn after the run started: its file no longer matches the index, and the index no longer the pin.
        var first = Path.Combine(folder.Path, "000000.png");
        PngIO.Save(RasterImage.Blank(28, 28, 1, 255), first);
        var tampered = Assert.Throws<InvalidDataException>(() => ConceptMaskFolder.Read(folder.Path));
        Assert.Contains("000000.png", tampered.Message);
        Assert.Contains("changed", tampered.Message);
        File.AppendAllText(ConceptMaskFolder.IndexPath(folder.Path), "\n");
        var moved2 = Assert.Throws<ArgumentException>(() =>
            TinyRun.Config("selective.arm=masked-loss", Stamping, $"selective.mask_folder={folder.Path}", $"selective.mask_folder_sha256=\"{hash}\""));
        Assert.Contains("selective.mask_folder_sha256", moved2.Message);
    }

    [Fact]
    public void Mask_folders_are_refused_where_they_cannot_mean_what_they_say()
    {
        using var folder = new TempDirectory();
        var detectorArm = Assert.Throws<ArgumentException>(() => TinyRun.Config("selective.arm=detector-masked-loss", Stamping));
        Assert.Contains("excise masks", detectorArm.Message);
        Assert.Contains("has no masks.jsonl", Assert.Throws<ArgumentException>(() =>
            TinyRun.Config("selective.arm=masked-loss", Stamping, $"selective.mask_folder={folder.Path}")).Message);

        var examples = ConceptDatasetBuilder.Build(TinyRun.Config(Stamping).DataOrDefault.ToRecipe()).Train;
        ConceptMaskFolder.Write(folder.Path, [(examples[0].Id, TopLeft(examples[0].Image))]);
        // An arm that does not mask would silently ignore the folder.
        Assert.Contains("would ignore", Assert.Throws<ArgumentException>(() =>
            TinyRun.Config("selective.arm=standard", Stamping, $"selective.mask_folder={folder.Path}")).Message);

        // A folder made for other images: no id matches, so it is refused rather than training with no masks at all.
        using var other = new TempDirectory();
        ConceptMaskFolder.Write(other.Path, [("train-59999", TopLeft(examples[0].Image))]);
        var config = TinyRun.Config("selective.arm=masked-loss", Stamping, $"selective.mask_folder={other.Path}");
        Assert.Contains("made for other data", Assert.Throws<InvalidDataException>(() => TrainingData.Prepare(config, TinyRun.Encoder, 1)).Message);

        // A mask of another size than its image.
        using var wrongSize = new TempDirectory();
        ConceptMaskFolder.Write(wrongSize.Path, [(examples[0].Id, RasterImage.Blank(32, 32, 1, 255))]);
        var sized = TinyRun.Config("selective.arm=masked-loss", Stamping, $"selective.mask_folder={wrongSize.Path}");
        Assert.Contains("32x32", Assert.Throws<InvalidDataException>(() => TrainingData.Prepare(sized, TinyRun.Encoder, 1)).Message);
    }
}
