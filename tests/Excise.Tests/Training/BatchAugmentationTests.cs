using Excise.Training;
using static TorchSharp.torch;

namespace Excise.Tests.Training;

/// <summary>diffusers' random crop and flip, drawn per step from (seed, step), applied alike to images and loss weights.</summary>
public class BatchAugmentationTests
{
    const int Size = 4;

    /// <summary>Two examples: a stored 4×4 square each, and example 1 also kept uncropped at 4×7 (with loss weights that mark its values above 40).</summary>
    static TrainingBatches Batches(bool randomFlip, bool withUncropped = true)
    {
        var squares = arange(2 * Size * Size, dtype: ScalarType.Byte).reshape(2, 1, Size, Size);
        var weights = squares.gt(20).to(ScalarType.Byte);
        var wide = arange(Size * 7, dtype: ScalarType.Byte).add(100).reshape(1, Size, 7);
        var uncropped = new Dictionary<long, UncroppedImage> { [1] = new(wide, wide.gt(110).to(ScalarType.Byte)) };
        return new TrainingBatches(squares, [0, 1], zeros(2, 3, 5), ones(2, 3), 0, weights, withUncropped ? uncropped : null, randomFlip);
    }

    /// <summary>Every crop and flip of the uncropped example, as the batch would hold it ([−1, 1] image, 0/1 weights).</summary>
    static List<(float[] Image, float[] Weights)> Candidates()
    {
        var wide = arange(Size * 7, dtype: ScalarType.Float32).add(100).reshape(1, Size, 7);
        var result = new List<(float[], float[])>();
        for (int left = 0; left + Size <= 7; left++)
            foreach (var flip in new[] { false, true })
            {
                var window = wide.narrow(2, left, Size);
                if (flip) window = window.flip(2);
                result.Add((window.div(127.5).sub(1).data<float>().ToArray(), window.gt(110).to(ScalarType.Float32).data<float>().ToArray()));
            }
        return result;
    }

    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    [Fact]
    public void Each_step_crops_and_flips_image_and_weights_alike_and_repeats_them_for_the_same_seed_and_step()
    {
        using var batches = Batches(randomFlip: true);
        var candidates = Candidates();
        var seen = new HashSet<int>();
        for (int step = 0; step < 40; step++)
        {
            var (images, weights) = batches.Draw([1, 0, 1], seed: 5, step, CPU);
            for (int position = 0; position < 3; position += 2)
            {
                var image = images[position].data<float>().ToArray();
                int match = candidates.FindIndex(c => c.Image.SequenceEqual(image));
                Assert.True(match >= 0, $"step {step}, position {position}: not a crop (or mirrored crop) of the uncropped image");
                Assert.Equal(candidates[match].Weights, weights![position].data<float>().ToArray());
                seen.Add(match);
            }
            var (again, againWeights) = batches.Draw([1, 0, 1], seed: 5, step, CPU);
            Assert.True(Same(again, images) && Same(againWeights!, weights!), "a resumed run must draw the same crops");
            // A position's draw does not depend on the rest of the batch (or on how a batch is split).
            Assert.True(Same(batches.Draw([1], seed: 5, step, CPU).Images[0], images[0]));
        }
        Assert.True(seen.Count >= 5, $"40 steps should visit most of the 8 crops × 2 flips, saw {seen.Count}");
        Assert.Contains(seen, m => m % 2 == 1);
        Assert.False(Enumerable.Range(0, 3).All(step => Same(batches.Draw([1], seed: 6, step, CPU).Images, batches.Draw([1], seed: 5, step, CPU).Images)),
                     "another seed draws other crops");
    }

    [Fact]
    public void Without_crops_or_flips_a_batch_is_the_stored_images_unchanged()
    {
        using var batches = Batches(randomFlip: false, withUncropped: false);
        var (images, weights) = batches.Draw([1, 0], seed: 5, step: 3, CPU);
        using var expected = arange(2 * Size * Size, dtype: ScalarType.Float32).reshape(2, 1, Size, Size).index_select(0, tensor(new long[] { 1, 0 }));
        Assert.True(Same(images, expected.div(127.5).sub(1)));
        Assert.True(Same(weights!, expected.gt(20).to(ScalarType.Float32)));
    }
}
