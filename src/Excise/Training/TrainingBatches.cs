using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Training;

/// <summary>
/// The tensors a trainer draws batches from: images as uint8 [N,C,H,W] (converted to [−1, 1] per batch,
/// which keeps the full set at a quarter of its float size), each image's caption index, and the frozen
/// text states of every distinct caption [K,T,D] with their masks [K,T]. The images are owned here; the
/// text-state tensors stay owned by whoever built them (usually a text-state cache).
/// </summary>
public sealed class TrainingBatches : IDisposable
{
    /// <summary>Seed stream (SeedMixer) of each epoch's example order; the trainer's noise is stream 2.</summary>
    const long OrderStream = 1;

    public Tensor Images { get; }
    public long[] CaptionIndex { get; }
    public Tensor TextStates { get; }
    public Tensor TextMask { get; }
    public int EmptyCaptionIndex { get; }
    /// <summary>uint8 [N,1,H,W]: 1 where the denoising loss counts a pixel, 0 where it must not (the masked loss); null: every pixel counts.</summary>
    public Tensor? LossWeights { get; }
    public int Count => CaptionIndex.Length;

    public TrainingBatches(Tensor imagesUint8, long[] captionIndex, Tensor textStates, Tensor textMask, int emptyCaptionIndex, Tensor? lossWeights = null)
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
    }

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

    /// <summary>Images of the given examples as float32 in [−1, 1] on <paramref name="device"/>.</summary>
    public Tensor ImagesAt(long[] indices, Device device)
    {
        using var idx = tensor(indices);
        return Diffusion.DenoisingObjective.ToModelRange(Images.index_select(0, idx).to(device));
    }

    /// <summary>The loss weights of the given examples as float32 on <paramref name="device"/>; null when every pixel counts.</summary>
    public Tensor? LossWeightsAt(long[] indices, Device device)
    {
        if (LossWeights is null) return null;
        using var idx = tensor(indices);
        return LossWeights.index_select(0, idx).to(device).to(ScalarType.Float32);
    }

    public void Dispose()
    {
        Images.Dispose();
        LossWeights?.Dispose();
    }
}
