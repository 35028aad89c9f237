using Excise.Data;
using Excise.Imaging;

namespace Excise.Tests.Data;

public class ImageFolderTests
{
    private static IReadOnlyList<TrainingExample> SampleExamples()
    {
        var examples = ConceptDatasetBuilder.Build(new ConceptDatasetRecipe
        {
            Split = DatasetSplit.Test,
            Limit = 12,
            Injection = new ConceptInjectionOptions { StampFraction = 0.5, MentionFraction = 0.5, Seed = 8 },
        }).Train.ToList();
        var colour = RasterImage.Blank(5, 4, 3, 0) with { Pixels = Enumerable.Range(0, 60).Select(i => (byte)(i * 4)).ToArray() };
        examples.Add(new TrainingExample("rgb \"odd\" id", colour, "a colourful, \"quoted\" caption", null, new ConceptTruth(true, false)));
        return examples;
    }

    [Fact]
    public void Write_then_read_round_trips_pixels_captions_labels_and_truth()
    {
        using var temp = new TempDirectory();
        var examples = SampleExamples();
        Assert.Contains(examples, e => e.Truth.Stamped && !e.Truth.CaptionMentionsConcept && e.ClassLabel is not null);
        ImageFolderDataset.Write(temp.Path, examples);
        Assert.False(File.Exists(temp.File("metadata.jsonl.tmp")));

        var read = ImageFolderDataset.Read(temp.Path);
        Assert.Equal(examples.Count, read.Count);
        foreach (var (written, loaded) in examples.Zip(read))
        {
            Assert.Equal(written.Id, loaded.Id);
            Assert.Equal(written.Caption, loaded.Caption);
            Assert.Equal(written.ClassLabel, loaded.ClassLabel);
            Assert.Equal(written.Truth, loaded.Truth);
            Assert.True(written.Image.SameContentAs(loaded.Image), $"pixels differ for {written.Id}");
        }
    }

    [Fact]
    public void Plain_hugging_face_metadata_without_our_fields_reads_as_clean()
    {
        using var temp = new TempDirectory();
        PngIO.Save(RasterImage.Blank(8, 8, 1, 50), temp.File("a.png"));
        File.WriteAllText(temp.File("metadata.jsonl"), "{\"file_name\": \"a.png\", \"text\": \"a thing\", \"extra\": [1, 2]}\n\n");
        var example = Assert.Single(ImageFolderDataset.Read(temp.Path));
        Assert.Equal(("a", "a thing", (int?)null, ConceptTruth.Clean), (example.Id, example.Caption, example.ClassLabel, example.Truth));
    }

    [Theory]
    [InlineData("{\"file_name\": \"a.png\", \"text\": ", "not valid JSON")]
    [InlineData("{\"file_name\": \"missing.png\", \"text\": \"x\"}", "missing.png")]
    [InlineData("{\"file_name\": \"junk.png\", \"text\": \"x\"}", "could not be decoded")]
    [InlineData("{\"file_name\": \"a.png\"}", "\"text\"")]
    [InlineData("{\"file_name\": \"a.png\", \"text\": \"x\", \"stamped\": \"yes\"}", "\"stamped\"")]
    [InlineData("{\"file_name\": \"a.png\", \"text\": \"x\", \"label\": \"3\"}", "\"label\" must be an integer")]
    [InlineData("{\"file_name\": \"a.png\", \"text\": \"x\", \"label\": [1]}", "\"label\" must be an integer")]
    [InlineData("{\"file_name\": \"../outside.png\", \"text\": \"x\"}", "outside the dataset folder")]
    [InlineData("{\"file_name\": \"/etc/passwd\", \"text\": \"x\"}", "outside the dataset folder")]
    [InlineData("{\"file_name\": \"\", \"text\": \"x\"}", "empty")]
    public void Bad_metadata_line_is_reported_with_file_and_line(string badLine, string messagePart)
    {
        using var temp = new TempDirectory();
        PngIO.Save(RasterImage.Blank(8, 8, 1, 50), temp.File("a.png"));
        File.WriteAllText(temp.File("junk.png"), "not a png");
        File.WriteAllText(temp.File("metadata.jsonl"), "{\"file_name\": \"a.png\", \"text\": \"fine\"}\n" + badLine + "\n");
        var error = Assert.Throws<InvalidDataException>(() => ImageFolderDataset.Read(temp.Path));
        Assert.Contains(temp.File("metadata.jsonl") + ":2", error.Message);
        Assert.Contains(messagePart, error.Message);
    }

    [Fact]
    public void Missing_metadata_is_reported()
    {
        using var temp = new TempDirectory();
        var error = Assert.Throws<FileNotFoundException>(() => ImageFolderDataset.Read(temp.Path));
        Assert.Contains("metadata.jsonl", error.Message);
    }
}
