using Excise.Data;

namespace Excise.Tests.Data;

/// <summary><c>excise dataset export</c>: the folder holds exactly what the config trains on, and reads back as it.</summary>
public sealed class DatasetExportTests
{
    [Fact]
    public void The_exported_folder_reads_back_as_the_images_and_captions_the_config_trains_on()
    {
        using var temp = new TempDirectory();
        var data = new DataConfig(Split: "test", Limit: 40, Concept: new ConceptConfig(StampFraction: 0.5, HeldOut: 3, Seed: 2));
        var result = DatasetExport.Write(data, temp.Path, heldOut: true);

        var trained = ConceptDatasetBuilder.Build(data.ToRecipe());
        var exported = ImageFolderDataset.Read(temp.Path);
        Assert.Equal(40, result.Images);
        Assert.Equal(trained.StampedCount, result.Stamped);
        Assert.InRange(result.Stamped, 10, 30);
        Assert.Equal(trained.Train.Select(e => (e.Id, e.Caption)), exported.Select(e => (e.Id, e.Caption)));
        // The pixels too: the stamp is in the PNG, not only in the ground truth.
        var firstStamped = trained.Train.First(e => e.Truth.Stamped);
        Assert.Equal(firstStamped.Image.FitTo(32, 1).Pixels, exported.Single(e => e.Id == firstStamped.Id).Image.Pixels);

        var groundTruth = File.ReadAllLines(Path.Combine(temp.Path, DatasetExport.GroundTruthFile));
        Assert.Equal(41, groundTruth.Length);
        Assert.Equal(result.Stamped, groundTruth.Skip(1).Count(line => line.Split(',')[^2] == "true"));
        Assert.Equal(3, ImageFolderDataset.Read(Path.Combine(temp.Path, DatasetExport.HeldOutFolder)).Count);
    }
}
