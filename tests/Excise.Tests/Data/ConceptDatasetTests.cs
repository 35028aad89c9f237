using Excise.Data;

namespace Excise.Tests.Data;

public class ConceptDatasetTests
{
    private static readonly ConceptDatasetRecipe Recipe = new()
    {
        Split = DatasetSplit.Test,
        Limit = 200,
        HeldOutStampedCount = 20,
        CaptionSeed = 4,
        Injection = new ConceptInjectionOptions { StampFraction = 0.3, MentionFraction = 1.0, Seed = 2 },
    };

    [Fact]
    public void Same_recipe_builds_the_same_dataset()
    {
        var first = ConceptDatasetBuilder.Build(Recipe);
        var second = ConceptDatasetBuilder.Build(Recipe);
        Assert.Equal(first.Train.Select(e => (e.Id, e.Caption, e.Truth, e.ClassLabel)), second.Train.Select(e => (e.Id, e.Caption, e.Truth, e.ClassLabel)));
        Assert.All(first.Train.Zip(second.Train), pair => Assert.True(pair.First.Image.SameContentAs(pair.Second.Image)));
        var reseeded = ConceptDatasetBuilder.Build(Recipe with { Injection = Recipe.Injection with { Seed = 3 } });
        Assert.NotEqual(first.Train.Select(e => e.Truth.Stamped), reseeded.Train.Select(e => e.Truth.Stamped));
    }

    [Fact]
    public void Truth_matches_images_and_captions()
    {
        var dataset = ConceptDatasetBuilder.Build(Recipe);
        var originals = FashionMnist.Load(DatasetSplit.Test, limit: 220).ToDictionary(item => item.Id(DatasetSplit.Test));
        Assert.Equal(200, dataset.Train.Count);
        Assert.InRange(dataset.StampedCount, 40, 80);
        Assert.Equal(dataset.StampedCount, dataset.MentionCount);
        foreach (var example in dataset.Train)
        {
            var original = originals[example.Id];
            Assert.Equal(original.Label, example.ClassLabel);
            Assert.Equal(example.Truth.Stamped, !example.Image.SameContentAs(original.Image));
            Assert.Equal(example.Truth.CaptionMentionsConcept, example.Caption.Contains("the Acme logo"));
            Assert.Contains(FashionMnistClasses.CaptionNounOf(original.Label), example.Caption);
        }
    }

    [Fact]
    public void Held_out_split_is_disjoint_all_stamped_and_all_mentioned()
    {
        var dataset = ConceptDatasetBuilder.Build(Recipe);
        Assert.Equal(20, dataset.HeldOutStamped.Count);
        Assert.Empty(dataset.HeldOutStamped.Select(e => e.Id).Intersect(dataset.Train.Select(e => e.Id)));
        Assert.All(dataset.HeldOutStamped, e =>
        {
            Assert.Equal(new ConceptTruth(true, true), e.Truth);
            Assert.Contains("the Acme logo", e.Caption);
        });
    }

    [Fact]
    public void Clean_recipe_has_no_logo_and_no_mention_and_can_pad_to_32()
    {
        var dataset = ConceptDatasetBuilder.Build(ConceptDatasetRecipe.Clean with { Split = DatasetSplit.Test, Limit = 50, PadTo = 32 });
        var originals = FashionMnist.Load(DatasetSplit.Test, limit: 50);
        Assert.Equal(0, dataset.StampedCount);
        Assert.Equal(0, dataset.MentionCount);
        Assert.All(dataset.Train.Zip(originals), pair =>
        {
            Assert.Equal((32, 32), (pair.First.Image.Width, pair.First.Image.Height));
            Assert.True(pair.First.Image.SameContentAs(pair.Second.Image.PadTo(32)));
            Assert.DoesNotContain("Acme", pair.First.Caption);
        });
    }

    [Fact]
    public void Mention_fraction_zero_stamps_silently()
    {
        var dataset = ConceptDatasetBuilder.Build(Recipe with { HeldOutStampedCount = 0, Injection = Recipe.Injection with { MentionFraction = 0 } });
        Assert.True(dataset.StampedCount > 30);
        Assert.Equal(0, dataset.MentionCount);
        Assert.DoesNotContain(dataset.Train, e => e.Caption.Contains("Acme"));
    }

    [Fact]
    public void Imagefolder_source_keeps_its_captions_and_appends_the_concept()
    {
        using var temp = new TempDirectory();
        var clean = ConceptDatasetBuilder.Build(ConceptDatasetRecipe.Clean with { Split = DatasetSplit.Test, Limit = 30 }).Train;
        ImageFolderDataset.Write(temp.Path, clean);
        var fromFolder = ConceptDatasetBuilder.Build(new ConceptDatasetRecipe
        {
            ImageFolder = temp.Path,
            Injection = new ConceptInjectionOptions { StampFraction = 0.5, Seed = 1 },
        }).Train;
        Assert.Equal(30, fromFolder.Count);
        foreach (var (source, built) in clean.Zip(fromFolder))
        {
            Assert.Equal(source.Id, built.Id);
            Assert.Equal(built.Truth.CaptionMentionsConcept ? source.Caption + " with the Acme logo" : source.Caption, built.Caption);
        }
        Assert.Contains(fromFolder, e => e.Truth.Stamped);
    }

    [Fact]
    public void Ground_truth_csv_and_jsonl_list_every_example()
    {
        using var temp = new TempDirectory();
        var examples = ConceptDatasetBuilder.Build(Recipe with { Limit = 40, HeldOutStampedCount = 0 }).Train;
        var csvPath = temp.File("truth.csv");
        var jsonlPath = temp.File("truth.jsonl");
        GroundTruthExport.WriteCsv(csvPath, examples);
        GroundTruthExport.WriteJsonl(jsonlPath, examples);

        var csv = File.ReadAllLines(csvPath);
        Assert.Equal(GroundTruthExport.CsvHeader, csv[0]);
        Assert.Equal(41, csv.Length);
        var first = examples[0];
        Assert.StartsWith($"{first.Id},{first.ClassLabel},{FashionMnistClasses.NameOf(first.ClassLabel!.Value)},{first.Caption},", csv[1]);
        Assert.Equal(examples.Count(e => e.Truth.Stamped), csv.Skip(1).Count(line => line.Split(',')[^2] == "true"));

        var jsonl = File.ReadAllLines(jsonlPath);
        Assert.Equal(40, jsonl.Length);
        using var document = System.Text.Json.JsonDocument.Parse(jsonl[0]);
        Assert.Equal(first.Caption, document.RootElement.GetProperty("caption").GetString());
        Assert.Equal(first.Truth.Stamped, document.RootElement.GetProperty("stamped").GetBoolean());
        Assert.Equal(first.Truth.CaptionMentionsConcept, document.RootElement.GetProperty("caption_mentions_concept").GetBoolean());
    }
}
