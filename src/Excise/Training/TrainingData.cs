using Excise.Data;
using Excise.Imaging;
using Excise.Text;

namespace Excise.Training;

/// <summary>A run's dataset, its frozen text states, and the tensors the trainer draws batches from.</summary>
public sealed record PreparedData(ConceptDataset Dataset, TextStateCache Text, TrainingBatches Batches) : IDisposable
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
        int size = config.DataOrDefault.ImageSize;
        var text = TextStateCache.Build(encoder, dataset.Train.Select(e => e.Caption));
        var images = ImageTensors.ToUint8Batch(dataset.Train.Select(e => e.Image.FitTo(size, modelChannels)).ToList());
        var captionIndex = dataset.Train.Select(e => (long)text.IndexOf(e.Caption)).ToArray();
        var selective = config.SelectiveOrDefault;
        var lossWeights = selective.MasksLoss ? LossWeights(dataset.Train, size, selective.MaskMargin) : null;
        var batches = new TrainingBatches(images, captionIndex, text.States, text.Mask, TextStateCache.UnconditionalIndex, lossWeights);
        return new PreparedData(dataset, text, batches);
    }

    /// <summary>
    /// Per pixel, whether the denoising loss counts it, as uint8 [N,1,size,size]: 0 on each example's concept mask fitted
    /// to the model's size and grown by <paramref name="margin"/>, 1 elsewhere (everywhere for examples without a mask).
    /// </summary>
    public static TorchSharp.torch.Tensor LossWeights(IReadOnlyList<TrainingExample> examples, int size, int margin)
    {
        if (!examples.Any(e => e.ConceptMask is not null))
            throw new InvalidDataException("The masked loss found no concept masks in the training data: stamp the concept (data.concept) " +
                                           "or give the imagefolder masks (mask_file_name, or transparent pixels; see docs/selective-learning.md).");
        var weights = new byte[examples.Count * size * size];
        for (int i = 0; i < examples.Count; i++)
        {
            var concept = examples[i].ConceptMask is { } mask
                ? ConceptMasks.Dilate(ConceptMasks.Fit(mask, m => m.FitTo(size, 1)), size, size, margin)
                : null;
            for (int p = 0; p < size * size; p++) weights[i * size * size + p] = concept is not null && concept[p] ? (byte)0 : (byte)1;
        }
        return TorchSharp.torch.tensor(weights, new long[] { examples.Count, 1, size, size });
    }
}
