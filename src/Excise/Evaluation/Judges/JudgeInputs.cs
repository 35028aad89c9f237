using Excise.Data;
using Excise.Training;
using static TorchSharp.torch;
using Excise.Imaging;

namespace Excise.Evaluation.Judges;

/// <summary>Turns images into what the judge networks read: [N, 1, 32, 32] floats in [−1, 1], as the diffusion models see them.</summary>
internal static class JudgeInputs
{
    public const int Side = JudgeNetwork.InputSide;
    public const int PixelCount = Side * Side;

    /// <summary>Fashion-MNIST's 28×28 is padded to 32×32 with black, other sizes resized; colour becomes grey.</summary>
    public static RasterImage Fit(RasterImage image) => image.FitTo(Side, 1);

    public static void WriteUnit(RasterImage image, float[] buffer, int offset)
    {
        var fitted = Fit(image);
        for (int i = 0; i < PixelCount; i++) buffer[offset + i] = fitted.Pixels[i] / 127.5f - 1f;
    }

    public static Tensor Batch(IReadOnlyList<RasterImage> images, int start, int count)
    {
        var buffer = new float[count * PixelCount];
        for (int i = 0; i < count; i++) WriteUnit(images[start + i], buffer, i * PixelCount);
        return tensor(buffer, new long[] { count, 1, Side, Side });
    }

    /// <summary>Runs <paramref name="body"/> over the images in batches, in eval mode without gradients, one dispose scope per batch.</summary>
    public static void ForEachBatch(JudgeNetwork network, IReadOnlyList<RasterImage> images, int batchSize, Action<Tensor, int> body)
    {
        ArgumentNullException.ThrowIfNull(images);
        network.eval();
        using var noGrad = no_grad();
        for (int start = 0, batch = 0; start < images.Count; start += batchSize, batch++)
        {
            using var scope = NewDisposeScope();
            int count = Math.Min(batchSize, images.Count - start);
            body(Batch(images, start, count), start);
            if (batch % 10 == 9) GC.Collect();
        }
    }
}
