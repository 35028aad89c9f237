using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Imaging;

/// <summary>Conversions between 8-bit images (HWC, interleaved) and model tensors (NCHW).</summary>
public static class ImageTensors
{
    /// <summary>Stacks equally sized images into a uint8 tensor [N,C,H,W].</summary>
    public static Tensor ToUint8Batch(IReadOnlyList<RasterImage> images)
    {
        if (images.Count == 0) throw new ArgumentException("No images to stack.");
        var first = images[0];
        int w = first.Width, h = first.Height, c = first.Channels;
        long plane = (long)w * h * c;
        var buffer = new byte[images.Count * plane];
        for (int i = 0; i < images.Count; i++)
        {
            var img = images[i];
            if (img.Width != w || img.Height != h || img.Channels != c)
                throw new ArgumentException($"Image {i} is {img.Width}×{img.Height}×{img.Channels}, expected {w}×{h}×{c}.");
            img.Pixels.CopyTo(buffer, i * plane);
        }
        using var hwc = tensor(buffer, new long[] { images.Count, h, w, c });
        return hwc.permute(0, 3, 1, 2).contiguous();
    }

    /// <summary>Converts [B,C,H,W] floats in [−1, 1] to 8-bit images.</summary>
    public static RasterImage[] FromFloatBatch(Tensor batch)
    {
        using var scope = NewDisposeScope();
        if (batch.dim() != 4) throw new ArgumentException($"Expected [B,C,H,W], got [{string.Join(", ", batch.shape)}].");
        // NaN would clamp to black silently: a sampler that diverged must stop, not write images that look like a result.
        if (!batch.isfinite().all().ToBoolean())
            throw new InvalidOperationException("The sampler produced non-finite pixels (NaN or infinity): the weights or the sampling settings diverged; no images were written.");
        var bytes = batch.detach().cpu().to(ScalarType.Float32).add(1f).mul(127.5f).round().clamp(0, 255)
            .to(ScalarType.Byte).permute(0, 2, 3, 1).contiguous();
        int n = (int)bytes.shape[0], h = (int)bytes.shape[1], w = (int)bytes.shape[2], c = (int)bytes.shape[3];
        var all = bytes.data<byte>().ToArray();
        int plane = h * w * c;
        return Enumerable.Range(0, n).Select(i => new RasterImage(w, h, c, all[(i * plane)..((i + 1) * plane)])).ToArray();
    }
}
