using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Training;

/// <summary>
/// The tensors a trainer draws batches from: images as uint8 [N,C,H,W] (converted to [−1, 1] per batch,
/// which keeps the full set at a quarter of its float size), each image's caption index, and the frozen
/// text states of every distinct caption [K,T,D] with their masks [K,T]. The images are owned here; the
/// text-state tensors stay owned by whoever built them (usually a text-state cache).
/// A pipeline run (<see cref="FromLatents"/>) holds VAE latents instead: each image's posterior mean and standard
/// deviation, float32 [N,C,h,w], both × the VAE's scaling factor; each step draws mean + std·ε as diffusers'
/// <c>latent_dist.sample()</c> does, with ε from the step's own generator. With random flips it holds 2N posteriors, the
/// images' and then their mirror images' (each encoded by the VAE, not a flipped latent), and a step takes the mirror
/// image's where the pixel path would have flipped the image. An image that is not square (data.center_crop off) is
/// cropped at each step where the pixel path would crop it, flipped where it would flip it, and that crop is encoded by
/// the VAE (<see cref="CropEncoder"/>) at that step, as diffusers' training script does for every image.
/// </summary>
public sealed class TrainingBatches : IDisposable
{
    /// <summary>Seed stream (SeedMixer) of each epoch's example order; the trainer's noise is stream 2.</summary>
    const long OrderStream = 1;
    /// <summary>Seed stream of each step's random crops and flips (data.center_crop off, data.random_flip on).</summary>
    const long AugmentStream = 3;
    /// <summary>Seed stream of each step's latent draws from the cached posteriors (pipeline runs).</summary>
    const long LatentStream = 4;

    /// <summary>uint8 images [N,C,H,W]; for a latent run the posterior means × scaling factor, float32 [N,C,h,w].</summary>
    public Tensor Images { get; }
    /// <summary>A latent run's posterior standard deviations × scaling factor, float32 like <see cref="Images"/>; null for images.</summary>
    public Tensor? LatentStd { get; }
    public long[] CaptionIndex { get; }
    public Tensor TextStates { get; }
    public Tensor TextMask { get; }
    public int EmptyCaptionIndex { get; }
    /// <summary>uint8 [N,1,H,W]: 1 where the denoising loss counts a pixel, 0 where it must not (the masked loss); null: every pixel counts.</summary>
    public Tensor? LossWeights { get; }
    public int Count => CaptionIndex.Length;

    /// <summary>By example index, the images cropped anew at each step (see <see cref="UncroppedImage"/>); empty when none is.</summary>
    readonly IReadOnlyDictionary<long, UncroppedImage> uncropped;
    readonly bool randomFlip;
    /// <summary>A latent run's VAE for the crops of non-square images; null when every image is square (or for pixels).</summary>
    readonly CropEncoder? cropEncoder;

    public TrainingBatches(Tensor imagesUint8, long[] captionIndex, Tensor textStates, Tensor textMask, int emptyCaptionIndex, Tensor? lossWeights = null,
                           IReadOnlyDictionary<long, UncroppedImage>? uncropped = null, bool randomFlip = false)
    {
        if (lossWeights is not null && (lossWeights.dtype != ScalarType.Byte || !lossWeights.shape.SequenceEqual(
                new[] { imagesUint8.shape[0], 1, imagesUint8.shape[2], imagesUint8.shape[3] })))
            throw new ArgumentException("loss weights must be a uint8 tensor [N,1,H,W] matching the images.");
        if (imagesUint8.dtype != ScalarType.Byte || imagesUint8.dim() != 4)
            throw new ArgumentException("images must be a uint8 tensor [N,C,H,W].");
        if (imagesUint8.shape[0] != captionIndex.Length)
            throw new ArgumentException($"{imagesUint8.shape[0]} images but {captionIndex.Length} caption indices.");
        if (captionIndex.Length == 0) throw new ArgumentException("The training set is empty.");
        long k = textStates.shape[0];
        if (captionIndex.Any(i => i < 0 || i >= k) || emptyCaptionIndex < 0 || emptyCaptionIndex >= k)
            throw new ArgumentException("A caption index is outside the text-state table.");
        Images = imagesUint8.DetachFromDisposeScope();
        CaptionIndex = captionIndex;
        TextStates = textStates;
        TextMask = textMask;
        EmptyCaptionIndex = emptyCaptionIndex;
        LossWeights = lossWeights?.DetachFromDisposeScope();
        this.uncropped = uncropped ?? new Dictionary<long, UncroppedImage>();
        KeepUncropped(imagesUint8.shape[1], imagesUint8.shape[2], lossWeights is not null);
        this.randomFlip = randomFlip;
    }

    void KeepUncropped(long channels, long size, bool masked)
    {
        foreach (var (index, image) in uncropped)
        {
            if (index < 0 || index >= Count) throw new ArgumentException($"An uncropped image is for example {index}, outside the {Count} examples.");
            if (image.Image.shape[0] != channels || image.Image.shape[1] < size || image.Image.shape[2] < size)
                throw new ArgumentException($"The uncropped image of example {index} is [{string.Join(",", image.Image.shape)}], smaller than the model's input or in other channels.");
            if ((image.LossWeights is not null) != masked) throw new ArgumentException($"The uncropped image of example {index} must carry loss weights exactly when the batches do.");
            image.Image.DetachFromDisposeScope();
            image.LossWeights?.DetachFromDisposeScope();
        }
    }

    private TrainingBatches(Tensor latentMean, Tensor latentStd, long[] captionIndex, Tensor textStates, Tensor textMask, int emptyCaptionIndex, Tensor? lossWeights,
                            bool randomFlip, IReadOnlyDictionary<long, UncroppedImage>? uncropped, CropEncoder? cropEncoder)
    {
        if (uncropped is { Count: > 0 } && cropEncoder is null)
            throw new ArgumentException("Latent batches with images to crop at each step need the VAE to encode the crops.");
        if (latentMean.dtype != ScalarType.Float32 || latentMean.dim() != 4 || !latentStd.shape.SequenceEqual(latentMean.shape) || latentStd.dtype != ScalarType.Float32)
            throw new ArgumentException("latents must be float32 means and standard deviations of one shape [N,C,h,w].");
        if (lossWeights is not null && (lossWeights.dtype != ScalarType.Byte || !lossWeights.shape.SequenceEqual(
                new[] { (long)captionIndex.Length, 1, latentMean.shape[2], latentMean.shape[3] })))
            throw new ArgumentException("loss weights must be a uint8 tensor [N,1,h,w] matching the latents.");
        long expected = captionIndex.Length * (randomFlip ? 2L : 1L);
        if (latentMean.shape[0] != expected)
            throw new ArgumentException($"{latentMean.shape[0]} latents but {captionIndex.Length} caption indices{(randomFlip ? " (with random flips: the images' latents, then their mirror images')" : "")}.");
        if (captionIndex.Length == 0) throw new ArgumentException("The training set is empty.");
        long k = textStates.shape[0];
        if (captionIndex.Any(i => i < 0 || i >= k) || emptyCaptionIndex < 0 || emptyCaptionIndex >= k)
            throw new ArgumentException("A caption index is outside the text-state table.");
        Images = latentMean.DetachFromDisposeScope();
        LatentStd = latentStd.DetachFromDisposeScope();
        CaptionIndex = captionIndex;
        TextStates = textStates;
        TextMask = textMask;
        EmptyCaptionIndex = emptyCaptionIndex;
        LossWeights = lossWeights?.DetachFromDisposeScope();
        this.uncropped = uncropped ?? new Dictionary<long, UncroppedImage>();
        if (cropEncoder is not null) KeepUncropped(3, cropEncoder.PixelSize, lossWeights is not null);
        this.cropEncoder = cropEncoder;
        this.randomFlip = randomFlip;
    }

    /// <summary>
    /// Batches of VAE latents (owned here from now on, as is <paramref name="cropEncoder"/>): posterior means and standard
    /// deviations × scaling factor, with loss weights at latent resolution (one per example). With
    /// <paramref name="randomFlip"/> the latents are 2N, the N images' and then their mirror images'. The examples in
    /// <paramref name="uncropped"/> (uint8 RGB, shorter side at the VAE's square, pixel loss weights) are cropped at each
    /// step and encoded by <paramref name="cropEncoder"/>; their cached rows (the centre crop's) are not used.
    /// </summary>
    public static TrainingBatches FromLatents(Tensor latentMean, Tensor latentStd, long[] captionIndex, Tensor textStates, Tensor textMask,
                                              int emptyCaptionIndex, Tensor? lossWeights = null, bool randomFlip = false,
                                              IReadOnlyDictionary<long, UncroppedImage>? uncropped = null, CropEncoder? cropEncoder = null) =>
        new(latentMean, latentStd, captionIndex, textStates, textMask, emptyCaptionIndex, lossWeights, randomFlip, uncropped, cropEncoder);

    /// <summary>Example indices of a step's batch: an endless stream of per-epoch permutations, a pure function of (seed, step).</summary>
    public long[] BatchIndices(long seed, int step, int batchSize)
    {
        var result = new long[batchSize];
        long position = (long)step * batchSize;
        int[]? perm = null;
        long permEpoch = -1;
        for (int i = 0; i < batchSize; i++, position++)
        {
            long epoch = position / Count;
            if (epoch != permEpoch) { perm = Permutation(seed, epoch); permEpoch = epoch; }
            result[i] = perm![position % Count];
        }
        return result;
    }

    int[]? cachedPermutation;
    long cachedEpoch = -1, cachedSeed;

    int[] Permutation(long seed, long epoch)
    {
        if (cachedPermutation is not null && cachedEpoch == epoch && cachedSeed == seed) return cachedPermutation;
        var perm = Enumerable.Range(0, Count).ToArray();
        var rng = new Random(Excise.Torch.SeedMixer.DeriveInt(seed, OrderStream, epoch));
        rng.Shuffle(perm);
        (cachedPermutation, cachedEpoch, cachedSeed) = (perm, epoch, seed);
        return perm;
    }

    /// <summary>
    /// A step's images as float32 in [−1, 1] and their loss weights as float32 (null when every pixel counts), on
    /// <paramref name="device"/>, with the step's random crops and flips applied to both alike: a pure function of
    /// (seed, step, the position in the batch), so resumed runs repeat them.
    /// </summary>
    public (Tensor Images, Tensor? LossWeights) Draw(long[] indices, long seed, int step, Device device)
    {
        if (LatentStd is not null) return DrawLatents(indices, seed, step, device);
        using var idx = tensor(indices);
        var images = Images.index_select(0, idx);
        var weights = LossWeights?.index_select(0, idx);
        if (randomFlip || uncropped.Count > 0) Augment(images, weights, indices, seed, step);
        return (Diffusion.DenoisingObjective.ToModelRange(images.to(device)), weights?.to(device).to(ScalarType.Float32));
    }

    /// <summary>
    /// A step's latents: mean + std·ε per example, ε from a CPU generator of (seed, step) alone, so the draw is a pure
    /// function of them on any device and a resumed run repeats it bit for bit.
    /// </summary>
    (Tensor Latents, Tensor? LossWeights) DrawLatents(long[] indices, long seed, int step, Device device)
    {
        // Per position, as the pixel path draws them: a crop (a non-square image only), then a flip. A square image's
        // mirror image has its own posterior N rows after the image's; a crop is flipped before the VAE encodes it.
        var flipped = new bool[indices.Length];
        var crops = new List<(int Position, Tensor Pixels, Tensor? Weights)>();
        for (int p = 0; p < indices.Length; p++)
        {
            var random = PositionRandom(seed, step, p);
            if (uncropped.TryGetValue(indices[p], out var source))
            {
                var (pixels, weights) = Crop(source, cropEncoder!.PixelSize, random);
                if (randomFlip && random.NextDouble() < 0.5) (pixels, weights) = (pixels.flip(2), weights?.flip(2));
                crops.Add((p, pixels, weights));
            }
            else flipped[p] = randomFlip && random.NextDouble() < 0.5;
        }
        using var rows = tensor(indices.Select((i, p) => flipped[p] ? i + Count : i).ToArray());
        using var generator = new Generator(Excise.Torch.SeedMixer.Derive(seed, LatentStream, step));
        var mean = Images.index_select(0, rows);
        var std = LatentStd!.index_select(0, rows);
        if (crops.Count > 0)
        {
            using var pixels = stack(crops.Select(c => c.Pixels));
            var (cropMean, cropStd) = cropEncoder!.Encode(pixels);
            for (int k = 0; k < crops.Count; k++)
            {
                mean[crops[k].Position].copy_(cropMean[k]);
                std[crops[k].Position].copy_(cropStd[k]);
            }
        }
        var noise = randn(mean.shape, generator: generator);
        var latents = mean.add_(std.mul_(noise));
        if (LossWeights is null) return (latents.to(device), null);
        using var idx = tensor(indices);
        var latentWeights = LossWeights.index_select(0, idx);
        for (int p = 0; p < indices.Length; p++)
            if (flipped[p]) latentWeights[p].copy_(latentWeights[p].flip(2));
        foreach (var (position, _, weights) in crops)
            latentWeights[position].copy_(TrainingData.ToLatentResolution(weights!.unsqueeze(0), (int)(cropEncoder!.PixelSize / latentWeights.shape[2]))[0]);
        return (latents.to(device), latentWeights.to(device).to(ScalarType.Float32));
    }

    /// <summary>A square of <paramref name="size"/> at a position drawn from <paramref name="random"/>, from the image and its loss weights alike.</summary>
    static (Tensor Pixels, Tensor? Weights) Crop(UncroppedImage source, long size, Random random)
    {
        long top = random.NextInt64(source.Image.shape[1] - size + 1), left = random.NextInt64(source.Image.shape[2] - size + 1);
        return (source.Image.narrow(1, top, size).narrow(2, left, size), source.LossWeights?.narrow(1, top, size).narrow(2, left, size));
    }

    /// <summary>A generator per position of a step's batch: an image's crop and flip do not depend on the rest of the batch or on how it is split.</summary>
    static Random PositionRandom(long seed, int step, int position) =>
        new(Excise.Torch.SeedMixer.DeriveInt(unchecked((long)Excise.Torch.SeedMixer.Derive(seed, AugmentStream, step)), position, 0));

    void Augment(Tensor images, Tensor? weights, long[] indices, long seed, int step)
    {
        long size = Images.shape[2];
        for (int position = 0; position < indices.Length; position++)
        {
            var random = PositionRandom(seed, step, position);
            if (uncropped.TryGetValue(indices[position], out var source))
            {
                var (pixels, pixelWeights) = Crop(source, size, random);
                images[position].copy_(pixels);
                weights?[position].copy_(pixelWeights!);
            }
            if (randomFlip && random.NextDouble() < 0.5)
            {
                images[position].copy_(images[position].flip(2));
                weights?[position].copy_(weights[position].flip(2));
            }
        }
    }

    public void Dispose()
    {
        Images.Dispose();
        LatentStd?.Dispose();
        LossWeights?.Dispose();
        cropEncoder?.Dispose();
        foreach (var image in uncropped.Values)
        {
            image.Image.Dispose();
            image.LossWeights?.Dispose();
        }
    }
}

/// <summary>
/// An image wider or taller than the model's square (its shorter side at the model's size), from which each step crops
/// a square at random, as diffusers' training scripts do without --center_crop: uint8 [C,h,w], and its loss weights
/// uint8 [1,h,w] when the loss is masked.
/// </summary>
public sealed record UncroppedImage(Tensor Image, Tensor? LossWeights);
