using Excise.Data;
using Excise.Imaging;
using Excise.Tests.Data;
using Excise.Training;
using static TorchSharp.torch;

namespace Excise.Tests.Training;

/// <summary>The masked-loss arm: where the concept is, how that reaches the loss, and how users give masks.</summary>
public sealed class MaskedLossTests
{
    static ConceptDataset Stamped(int limit = 60) => ConceptDatasetBuilder.Build(new ConceptDatasetRecipe
    {
        Split = DatasetSplit.Test, Limit = limit,
        Injection = new ConceptInjectionOptions { ConceptPhrase = "the Acme logo", StampFraction = 0.5, MentionFraction = 1, Seed = 3 },
    });

    [Fact]
    public void A_stamped_example_carries_exactly_where_the_stamper_drew()
    {
        var dataset = Stamped();
        var originals = FashionMnist.Load(DatasetSplit.Test, limit: 60).ToDictionary(item => item.Id(DatasetSplit.Test));
        Assert.Contains(dataset.Train, e => e.Truth.Stamped);
        foreach (var example in dataset.Train)
        {
            if (!example.Truth.Stamped) { Assert.Null(example.ConceptMask); continue; }
            var mask = example.ConceptMask!;
            Assert.Equal((example.Image.Width, example.Image.Height, 1), (mask.Width, mask.Height, mask.Channels));
            var original = originals[example.Id].Image;
            int changedOutside = 0, masked = 0;
            for (int i = 0; i < mask.Pixels.Length; i++)
            {
                if (mask.Pixels[i] > 0) masked++;
                else if (example.Image.Pixels[i] != original.Pixels[i]) changedOutside++;
            }
            Assert.Equal(0, changedOutside);   // every pixel the stamp changed is inside the mask…
            Assert.InRange(masked, 1, 20 * 20); // …and the mask is the stamp's box, not the image (size 0.4 of 28 px: 11 px, plus outline)
        }
    }

    [Fact]
    public void Loss_weights_follow_the_mask_through_the_models_padding_and_the_margin()
    {
        var dataset = Stamped();
        var stamped = dataset.Train.First(e => e.Truth.Stamped);
        var clean = dataset.Train.First(e => !e.Truth.Stamped);
        var preparation = new Excise.Data.ImagePreparation(Size: 32, Channels: 1, CenterCrop: false, RandomFlip: false, ToGrey: false);
        var concepts = TrainingData.ConceptPixelsOf([stamped, clean], preparation, margin: 2);
        Assert.All(concepts, c => Assert.Equal((32, 32), (c.Width, c.Height)));
        Assert.DoesNotContain(true, concepts[1].Inside); // the clean image: every pixel counts
        var values = concepts[0].Inside.Select(inside => inside ? 0 : 1).ToArray();

        // Fashion-MNIST's 28 px are padded to 32 (2 px each side), so the stamp's pixels move by (2, 2); the margin grows them by 2.
        var mask = stamped.ConceptMask!;
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++)
            {
                bool near = false;
                for (int dy = -2; dy <= 2 && !near; dy++)
                    for (int dx = -2; dx <= 2 && !near; dx++)
                    {
                        int sx = x + dx - 2, sy = y + dy - 2;
                        near = sx is >= 0 and < 28 && sy is >= 0 and < 28 && mask.Pixels[sy * 28 + sx] > 0;
                    }
                Assert.True((values[y * 32 + x] == 0) == near, $"pixel ({x}, {y}): weight {values[y * 32 + x]}, near the stamp: {near}");
            }
        var noMasks = Assert.Throws<InvalidDataException>(() => TrainingData.ConceptPixelsOf([clean], preparation, 2));
        Assert.Contains("no concept masks", noMasks.Message);
    }

    [Fact]
    public void The_masked_loss_averages_over_kept_pixels_and_sends_no_gradient_through_masked_ones()
    {
        using var scope = NewDisposeScope();
        var prediction = randn(2, 1, 4, 4, generator: new Generator(1)).requires_grad_(true);
        var target = randn(2, 1, 4, 4, generator: new Generator(2));
        Assert.Equal(nn.functional.mse_loss(prediction, target).ToDouble(), Excise.Diffusion.DenoisingObjective.MeanSquaredError(prediction, target, ones(2, 1, 4, 4)).ToDouble(), 6);

        var weights = ones(2, 1, 4, 4);
        weights[0, 0, 1, 1] = 0; weights[0, 0, 1, 2] = 0; weights[1, 0, 3, 3] = 0;
        var loss = Excise.Diffusion.DenoisingObjective.MeanSquaredError(prediction, target, weights);
        var squared = (prediction - target).pow(2).detach();
        double expected = (squared.sum().ToDouble() - squared[0, 0, 1, 1].ToDouble() - squared[0, 0, 1, 2].ToDouble() - squared[1, 0, 3, 3].ToDouble()) / 29;
        Assert.Equal(expected, loss.ToDouble(), 6);
        loss.backward();
        var grad = prediction.grad!;
        Assert.Equal(0, grad[0, 0, 1, 1].ToDouble());
        Assert.Equal(0, grad[1, 0, 3, 3].ToDouble());
        Assert.NotEqual(0, grad[0, 0, 0, 0].ToDouble());
    }

    [Fact]
    public void An_imagefolder_gives_masks_as_kohya_users_do_and_an_export_writes_them()
    {
        using var temp = new TempDirectory();
        var image = RasterImage.Blank(8, 8, 1, 90);
        PngIO.Save(image, temp.File("a.png"));
        var learn = RasterImage.Blank(8, 8, 1, 255);
        learn.Pixels[3 * 8 + 5] = 0; // black: the concept, left out of the loss
        PngIO.Save(learn, temp.File("a-mask.png"));
        PngIO.Save(RasterImage.Blank(4, 4, 1, 255), temp.File("small-mask.png"));
        File.WriteAllText(temp.File("metadata.jsonl"),
            "{\"file_name\": \"a.png\", \"text\": \"a bag\", \"mask_file_name\": \"a-mask.png\"}\n" +
            "{\"file_name\": \"a.png\", \"text\": \"a bag\", \"id\": \"plain\"}\n");
        var read = ImageFolderDataset.Read(temp.Path);
        Assert.Equal([5 + 3 * 8], Enumerable.Range(0, 64).Where(i => read[0].ConceptMask!.Pixels[i] > 0));
        Assert.Null(read[1].ConceptMask); // an opaque image without a mask file: nothing known

        File.WriteAllText(temp.File("metadata.jsonl"), "{\"file_name\": \"a.png\", \"text\": \"a bag\", \"mask_file_name\": \"small-mask.png\"}\n");
        var mismatch = Assert.Throws<InvalidDataException>(() => ImageFolderDataset.Read(temp.Path));
        Assert.Contains("pixel for pixel", mismatch.Message);

        // Exported stamped examples carry their masks and read back with them.
        var examples = Stamped(12).Train;
        ImageFolderDataset.Write(temp.File("export"), examples);
        var back = ImageFolderDataset.Read(temp.File("export"));
        foreach (var (written, loaded) in examples.Zip(back))
            Assert.Equal(written.ConceptMask?.Pixels, loaded.ConceptMask?.Pixels);
    }

    [Fact]
    public void The_masked_loss_arm_is_refused_without_masks_and_trains_with_them()
    {
        var refused = Assert.Throws<ArgumentException>(() => TinyRun.Config("selective.arm=masked-loss"));
        Assert.Contains("concept masks", refused.Message);
        var config = TinyRun.Config("selective.arm=masked-loss", "data.concept={\"phrase\":\"the Acme logo\",\"stamp_fraction\":0.5}");
        using var data = TrainingData.Prepare(config, TinyRun.Encoder, 1);
        Assert.NotNull(data.Batches.LossWeights);
        using var zeros = data.Batches.LossWeights!.eq(0).sum();
        Assert.True(zeros.ToInt64() > 0);
        using var standard = TrainingData.Prepare(TinyRun.Config("data.concept={\"phrase\":\"the Acme logo\",\"stamp_fraction\":0.5}"), TinyRun.Encoder, 1);
        Assert.Null(standard.Batches.LossWeights);
    }
}
