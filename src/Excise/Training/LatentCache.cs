using System.Globalization;
using System.Security.Cryptography;
using Excise.Diffusion;
using Excise.Models.Vae;
using Excise.Serialization;
using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Training;

/// <summary>
/// What a latent cache was made from, kept in its safetensors metadata: the VAE's weights (SHA-256), the prepared images
/// (SHA-256 of their uint8 pixels, in order) and the scaling factor. A cache whose key differs from the run's is encoded anew.
/// </summary>
public sealed record LatentCacheKey(string VaeSha256, string ImagesSha256, double ScalingFactor)
{
    const string VaeKey = "vae_sha256", ImagesKey = "images_sha256", ScalingKey = "scaling_factor";

    public IReadOnlyDictionary<string, string> ToMetadata() => new Dictionary<string, string>
    {
        [VaeKey] = VaeSha256,
        [ImagesKey] = ImagesSha256,
        [ScalingKey] = ScalingFactor.ToString("R", CultureInfo.InvariantCulture),
    };

    /// <summary>The key a cache file records; null when it records none (not a latent cache).</summary>
    public static LatentCacheKey? FromMetadata(IReadOnlyDictionary<string, string> metadata) =>
        metadata.TryGetValue(VaeKey, out var vae) && metadata.TryGetValue(ImagesKey, out var images) && metadata.TryGetValue(ScalingKey, out var scaling)
        && double.TryParse(scaling, NumberStyles.Float, CultureInfo.InvariantCulture, out var factor)
            ? new LatentCacheKey(vae, images, factor) : null;

    /// <summary>The SHA-256 of a uint8 image batch's pixels, image by image (no copy of the whole batch).</summary>
    public static string HashImages(Tensor imagesUint8)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        for (long i = 0; i < imagesUint8.shape[0]; i++)
        {
            using var image = imagesUint8[i].contiguous();
            hash.AppendData(image.data<byte>().ToArray());
        }
        return Digest.Hex(hash.GetHashAndReset());
    }
}

/// <summary>A pipeline run's training images as the VAE encodes them: posterior means and standard deviations × scaling factor.</summary>
public sealed record EncodedLatents(Tensor Mean, Tensor Std, bool FromCache);

/// <summary>
/// Encodes a run's images with the pipeline's VAE once and keeps the posteriors in the run directory
/// (latents.safetensors: "mean" and "std", float32 [N,C,h,w], already × scaling_factor), so a resumed run reads them
/// back instead of encoding again, bit for bit the tensors the first attempt trained on.
/// </summary>
public static class LatentCache
{
    /// <summary>Images per VAE forward pass: small, as a full-size VAE's activations at 512 px are large.</summary>
    public const int EncodeBatchSize = 4;
    const string MeanName = "mean", StdName = "std";

    /// <param name="imagesUint8">The prepared images, uint8 [N,3,H,W].</param>
    /// <param name="loadVae">Loads the VAE; called only when the cache does not fit.</param>
    /// <param name="write">Whether to write the cache (rank 0 of a data-parallel run; the others only read it).</param>
    public static EncodedLatents LoadOrEncode(string path, LatentCacheKey key, Tensor imagesUint8, Func<AutoencoderKL> loadVae, Device device, bool write)
    {
        if (File.Exists(path) && LatentCacheKey.FromMetadata(SafetensorsFile.ReadMetadata(path)) == key)
        {
            using var contents = SafetensorsFile.Load(path);
            var mean = contents[MeanName].clone();
            var std = contents[StdName].clone();
            if (mean.shape[0] == imagesUint8.shape[0]) return new EncodedLatents(mean, std, FromCache: true);
            mean.Dispose();
            std.Dispose();
        }
        var encoded = Encode(imagesUint8, loadVae, device, key.ScalingFactor);
        if (write) SafetensorsFile.Save(path, [new(MeanName, encoded.Mean), new(StdName, encoded.Std)], key.ToMetadata());
        return encoded;
    }

    /// <summary>The VAE's posterior of every image × <paramref name="scalingFactor"/>, in batches, without gradients, on the CPU.</summary>
    public static EncodedLatents Encode(Tensor imagesUint8, Func<AutoencoderKL> loadVae, Device device, double scalingFactor)
    {
        using var vae = loadVae();
        vae.to(device);
        var (mean, std) = Encode(vae, imagesUint8, device, scalingFactor);
        return new EncodedLatents(mean, std, FromCache: false);
    }

    /// <summary>As above with a VAE already on <paramref name="device"/>: posterior means and standard deviations × scaling factor, on the CPU.</summary>
    public static (Tensor Mean, Tensor Std) Encode(AutoencoderKL vae, Tensor imagesUint8, Device device, double scalingFactor)
    {
        var means = new List<Tensor>();
        var stds = new List<Tensor>();
        try
        {
            using (no_grad())
                for (long start = 0; start < imagesUint8.shape[0]; start += EncodeBatchSize)
                {
                    using var scope = NewDisposeScope();
                    var pixels = DenoisingObjective.ToModelRange(imagesUint8.narrow(0, start, Math.Min(EncodeBatchSize, imagesUint8.shape[0] - start)).to(device));
                    var posterior = vae.Encode(pixels);
                    means.Add(posterior.Mean.mul(scalingFactor).cpu().MoveToOuterDisposeScope());
                    stds.Add(posterior.LogVariance.mul(0.5).exp().mul_(scalingFactor).cpu().MoveToOuterDisposeScope());
                }
            return (cat(means, 0), cat(stds, 0));
        }
        finally
        {
            foreach (var t in means.Concat(stds)) t.Dispose();
        }
    }
}

/// <summary>
/// The pipeline's VAE kept for the whole run, to encode the crops a step draws from images that are not square
/// (data.center_crop off): diffusers' training script crops each time it loads an image and encodes every batch, so a
/// crop drawn anew at each step cannot come from a cache.
/// </summary>
public sealed class CropEncoder : IDisposable
{
    readonly AutoencoderKL vae;
    readonly Device device;
    readonly double scalingFactor;

    /// <param name="vae">Owned from now on, and moved to <paramref name="device"/>.</param>
    /// <param name="pixelSize">The square the VAE is given (data.image_size).</param>
    public CropEncoder(AutoencoderKL vae, Device device, double scalingFactor, int pixelSize)
    {
        vae.to(device);
        (this.vae, this.device, this.scalingFactor, PixelSize) = (vae, device, scalingFactor, pixelSize);
    }

    public int PixelSize { get; }

    /// <summary>uint8 [B,3,S,S] crops → posterior means and standard deviations × scaling factor, float32 on the CPU.</summary>
    public (Tensor Mean, Tensor Std) Encode(Tensor cropsUint8) => LatentCache.Encode(vae, cropsUint8, device, scalingFactor);

    public void Dispose() => vae.Dispose();
}
