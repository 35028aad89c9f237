using Excise.Data;
using Excise.Imaging;

namespace Excise.Tests.Data;

public class SampleGridTests
{
    [Fact]
    public void Grid_of_stamped_examples_is_written_and_decodes_to_the_expected_size()
    {
        var recipe = new ConceptDatasetRecipe
        {
            Split = DatasetSplit.Test,
            PerClassLimit = 2,
            Injection = new ConceptInjectionOptions { StampFraction = 1.0, Seed = 3 },
        };
        var examples = ConceptDatasetBuilder.Build(recipe).Train;
        Assert.Equal(20, examples.Count);
        var images = examples.OrderBy(e => e.ClassLabel).ThenBy(e => e.Id).Select(e => e.Image).ToList();

        using var temp = new TempDirectory();
        var path = temp.File("grid.png");
        ImageGrid.Save(images, columns: 10, path, padding: 2, scale: 3);

        var decoded = PngIO.Load(path);
        Assert.Equal(10 * 28 * 3 + 11 * 2, decoded.Width);
        Assert.Equal(2 * 28 * 3 + 3 * 2, decoded.Height);
        Assert.Equal(1, decoded.Channels);
        // The cell at row 0, column 0 is the first image upscaled by 3: check one pixel of it survives the round trip.
        Assert.Equal(images[0][5, 7], decoded[2 + 5 * 3 + 1, 2 + 7 * 3 + 1]);

        // Set EXCISE_DATA_SAMPLES=path to refresh docs/data-samples.png.
        if (Environment.GetEnvironmentVariable("EXCISE_DATA_SAMPLES") is { Length: > 0 } samplesPath)
            File.Copy(path, samplesPath, overwrite: true);
    }
}
