using Excise.Data;
using Excise.Imaging;
using Excise.Pipelines;
using Excise.Serialization;
using Excise.Text;

namespace Excise.Training;

/// <summary>A run's dataset, its frozen text states, and the tensors the trainer draws batches from.</summary>
/// <param name="ImagesDone">What was done to the images to fit the model, for the run's log.</param>
public sealed record PreparedData(ConceptDataset Dataset, TextStateCache Text, TrainingBatches Batches, string ImagesDone) : IDisposable
{
    public void Dispose()
    {
        Batches.Dispose();
        Text.Dispose();
    }
}

/// <summary>Turns a run's data and text settings into training tensors: dataset → captions → text states.</summary>
public static class TrainingData
{
    /// <summary>What the run's arm does to the data: drop the concept's images, or scrub its phrase from the captions.</summary>
    public static ConceptDataset ApplyArm(ConceptDataset dataset, RunConfig config)
    {
        var phrase = config.DataOrDefault.Concept?.Phrase;
        return config.SelectiveOrDefault.Arm switch
        {
            TrainingArm.FilterImages => dataset with { Train = dataset.Train.Where(e => !e.Truth.Stamped).ToList() },
            TrainingArm.ScrubCaptions when phrase is not null => dataset with
            {
                Train = dataset.Train.Select(e => CaptionScrubber.Mentions(e.Caption, phrase)
                    ? e with { Caption = CaptionScrubber.Scrub(e.Caption, phrase), Truth = e.Truth with { CaptionMentionsConcept = false } }
                    : e).ToList(),
            },
            _ => dataset,
        };
    }

    public static PreparedData Prepare(RunConfig config, ITextEncoder encoder, int modelChannels)
    {
        var dataset = ApplyArm(ConceptDatasetBuilder.Build(config.DataOrDefault.ToRecipe()), config);
        if (dataset.Train.Count == 0) throw new InvalidDataException("The dataset has no training images; check data.source, data.path and data.limit.");
        if (config.SelectiveOrDefault.MaskFolder is { } maskFolder)
            dataset = dataset with { Train = ConceptMaskFolder.Apply(ConceptMaskFolder.Read(maskFolder), dataset.Train, $"selective.mask_folder {maskFolder}") };
        var preparation = config.DataOrDefault.ImagePreparation(modelChannels);
        var prepared = dataset.Train.Select(e => preparation.Prepare(e.Image, e.Id)).ToList();
        var selective = config.SelectiveOrDefault;
        var concepts = selective.MasksLoss ? ConceptPixelsOf(dataset.Train, preparation, selective.MaskMargin) : null;

        var text = TextStateCache.Build(encoder, dataset.Train.Select(e => e.Caption));
        var images = SquareImages(prepared, preparation);
        var lossWeights = SquareLossWeights(concepts, preparation);
        var uncropped = Uncropped(prepared, preparation, concepts);
        var captionIndex = dataset.Train.Select(e => (long)text.IndexOf(e.Caption)).ToArray();
        var batches = new TrainingBatches(images, captionIndex, text.States, text.Mask, TextStateCache.UnconditionalIndex, lossWeights, uncropped, preparation.RandomFlip);
        return new PreparedData(dataset, text, batches, preparation.Describe(dataset.Train.Select(e => e.Image).ToList(), prepared));
    }

    /// <summary>
    /// A pipeline run's data: the images prepared as RGB squares of the pipeline's pixel size, encoded once by its VAE
    /// (or read back from <paramref name="latentCachePath"/> when that cache was made from the same VAE and images), the
    /// captions encoded by its CLIP text encoder, and the loss masks brought down to latent resolution. A latent pixel is
    /// left out of the loss when any of the image pixels it covers is (the VAE mixes neighbouring pixels into each latent,
    /// so a latent touching the concept carries some of it).
    /// </summary>
    public static PreparedData PrepareLatents(RunConfig config, ITextEncoder encoder, StableDiffusionPipelineFolder pipeline,
                                              string latentCachePath, TorchSharp.torch.Device device, bool writeCache)
    {
        var dataset = ApplyArm(ConceptDatasetBuilder.Build(config.DataOrDefault.ToRecipe()), config);
        if (dataset.Train.Count == 0) throw new InvalidDataException("The dataset has no training images; check data.source, data.path and data.limit.");
        if (config.SelectiveOrDefault.MaskFolder is { } maskFolder)
            dataset = dataset with { Train = ConceptMaskFolder.Apply(ConceptMaskFolder.Read(maskFolder), dataset.Train, $"selective.mask_folder {maskFolder}") };
        var preparation = config.DataOrDefault.ImagePreparation(pipeline.VaeConfig.InChannels);
        var prepared = dataset.Train.Select(e => preparation.Prepare(e.Image, e.Id)).ToList();
        var selective = config.SelectiveOrDefault;
        var concepts = selective.MasksLoss ? ConceptPixelsOf(dataset.Train, preparation, selective.MaskMargin) : null;
        int size = preparation.Size;

        var text = TextStateCache.Build(encoder, dataset.Train.Select(e => e.Caption));
        var uncropped = new Dictionary<long, UncroppedImage>();
        CropEncoder? cropEncoder = null;
        try
        {
            // As on the pixel path, a non-square image is cached by its centre crop, which a step replaces by the crop it
            // draws, encoded then.
            using var prepared4 = SquareImages(prepared, preparation);
            // Random flips: the VAE encodes each image's mirror image too (once), rather than flipping latents, which only
            // approximates encoding the flipped image.
            using var images = preparation.RandomFlip ? TorchSharp.torch.cat([prepared4, prepared4.flip(3)], 0) : prepared4.alias();
            var vae = pipeline.VaeConfig;
            var key = new LatentCacheKey(Digest.Sha256Remembered(pipeline.VaeWeights.Path), LatentCacheKey.HashImages(images), vae.ScalingFactor);
            var latents = LatentCache.LoadOrEncode(latentCachePath, key, images, pipeline.LoadVae, device, writeCache);
            using var pixelWeights = SquareLossWeights(concepts, preparation);
            var latentWeights = pixelWeights is null ? null : ToLatentResolution(pixelWeights, vae.DownsamplingFactor);
            uncropped = Uncropped(prepared, preparation, concepts);
            if (uncropped.Count > 0) cropEncoder = new CropEncoder(pipeline.LoadVae(), device, vae.ScalingFactor, size);
            var captionIndex = dataset.Train.Select(e => (long)text.IndexOf(e.Caption)).ToArray();
            var batches = TrainingBatches.FromLatents(latents.Mean, latents.Std, captionIndex, text.States, text.Mask, TextStateCache.UnconditionalIndex,
                                                      latentWeights, preparation.RandomFlip, uncropped, cropEncoder);
            var shape = string.Join("×", latents.Mean.shape.Skip(1));
            var done = preparation.Describe(dataset.Train.Select(e => e.Image).ToList(), prepared) +
                       (latents.FromCache
                           ? $" Read their VAE latents ({shape}, × scaling_factor {vae.ScalingFactor}) from {latentCachePath}, made from the same VAE and images."
                           : $" Encoded them {(preparation.RandomFlip ? "and their mirror images " : "")}once with the pipeline's VAE to latents {shape} " +
                             $"(posterior mean and std × scaling_factor {vae.ScalingFactor}; each step samples mean + std·ε" +
                             (preparation.RandomFlip ? ", from the mirror image's posterior for a flipped example" : "") + ")" +
                             (writeCache ? $", cached in {latentCachePath}." : "."));
            if (uncropped.Count > 0)
                done += $" {uncropped.Count} images are not square: each step encodes the {size}×{size} crop it draws from them with the VAE " +
                        "(their cached latents, of the centre crop, are not used; data.center_crop=true crops them once and skips the VAE at each step).";
            if (concepts is not null) done += $" Loss masks at latent resolution: a latent pixel is left out when any of its {vae.DownsamplingFactor}×{vae.DownsamplingFactor} image pixels is.";
            return new PreparedData(dataset, text, batches, done);
        }
        catch
        {
            text.Dispose();
            cropEncoder?.Dispose();
            foreach (var image in uncropped.Values)
            {
                image.Image.Dispose();
                image.LossWeights?.Dispose();
            }
            throw;
        }
    }

    /// <summary>Every prepared image at the model's square, uint8 [N,C,S,S]; one cropped anew each step is stored by its centre.</summary>
    static TorchSharp.torch.Tensor SquareImages(IReadOnlyList<RasterImage> prepared, ImagePreparation preparation) =>
        ImageTensors.ToUint8Batch(prepared.Select(p => preparation.NeedsCrop(p) ? p.CropCentre(preparation.Size) : p).ToList());

    /// <summary>The loss weights of <see cref="SquareImages"/>, uint8 [N,1,S,S]; null when every pixel counts.</summary>
    static TorchSharp.torch.Tensor? SquareLossWeights(IReadOnlyList<ConceptPixels>? concepts, ImagePreparation preparation) =>
        concepts is null ? null : LossWeights(concepts.Select(c => c.Crop(preparation.Size)).ToList(), preparation.Size);

    /// <summary>By example index, the images wider or taller than the model's square, whole, with their loss weights.</summary>
    static Dictionary<long, UncroppedImage> Uncropped(IReadOnlyList<RasterImage> prepared, ImagePreparation preparation, IReadOnlyList<ConceptPixels>? concepts)
    {
        var uncropped = new Dictionary<long, UncroppedImage>();
        for (int i = 0; i < prepared.Count; i++)
            if (preparation.NeedsCrop(prepared[i]))
                uncropped[i] = new UncroppedImage(ImageTensors.ToUint8Batch([prepared[i]])[0], concepts is null ? null : LossWeights([concepts[i]], null)[0]);
        return uncropped;
    }

    /// <summary>uint8 [N,1,H,W] pixel loss weights → [N,1,H/f,W/f]: 0 wherever any pixel of the f×f block is 0.</summary>
    public static TorchSharp.torch.Tensor ToLatentResolution(TorchSharp.torch.Tensor pixelWeights, int factor)
    {
        using var scope = TorchSharp.torch.NewDisposeScope();
        var excluded = pixelWeights.eq(0).to(TorchSharp.torch.ScalarType.Float32);
        var anyExcluded = TorchSharp.torch.nn.functional.max_pool2d(excluded, factor, factor);
        return anyExcluded.eq(0).to(TorchSharp.torch.ScalarType.Byte).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Where each example's prepared image (<see cref="ImagePreparation.Prepare"/>) shows the concept, grown by
    /// <paramref name="margin"/>: the pixels the masked loss ignores. An example without a mask has none.
    /// </summary>
    public static IReadOnlyList<ConceptPixels> ConceptPixelsOf(IReadOnlyList<TrainingExample> examples, ImagePreparation preparation, int margin)
    {
        if (!examples.Any(e => e.ConceptMask is not null))
            throw new InvalidDataException("The masked loss found no concept masks in the training data: stamp the concept (data.concept) " +
                                           "or give the imagefolder masks (mask_file_name, or transparent pixels; see docs/selective-learning.md).");
        return examples.Select(e =>
        {
            var (width, height) = preparation.PreparedSize(e.Image.Width, e.Image.Height);
            var inside = e.ConceptMask is { } mask
                ? ConceptMasks.Dilate(ConceptMasks.Fit(mask, preparation.PrepareMask), width, height, margin)
                : new bool[width * height];
            return new ConceptPixels(width, height, inside);
        }).ToList();
    }

    /// <summary>
    /// Per pixel, whether the denoising loss counts it, as uint8 [N,1,H,W]: 0 on each example's concept pixels, 1
    /// elsewhere. All examples share one size unless <paramref name="size"/> is null (a single uncropped example).
    /// </summary>
    static TorchSharp.torch.Tensor LossWeights(IReadOnlyList<ConceptPixels> concepts, int? size)
    {
        int width = size ?? concepts[0].Width, height = size ?? concepts[0].Height, plane = width * height;
        var weights = new byte[concepts.Count * plane];
        for (int i = 0; i < concepts.Count; i++)
            for (int p = 0; p < plane; p++) weights[i * plane + p] = concepts[i].Inside[p] ? (byte)0 : (byte)1;
        return TorchSharp.torch.tensor(weights, new long[] { concepts.Count, 1, height, width });
    }
}

/// <summary>A prepared image's concept pixels (row-major, <paramref name="Width"/> × <paramref name="Height"/>).</summary>
public sealed record ConceptPixels(int Width, int Height, bool[] Inside)
{
    /// <summary>The centre square, as the stored batch holds the image.</summary>
    public ConceptPixels Crop(int size)
    {
        if (Width == size && Height == size) return this;
        int left = (int)Math.Round((Width - size) / 2.0), top = (int)Math.Round((Height - size) / 2.0);
        var inside = new bool[size * size];
        for (int y = 0; y < size; y++) Array.Copy(Inside, (top + y) * Width + left, inside, y * size, size);
        return new ConceptPixels(size, size, inside);
    }
}
