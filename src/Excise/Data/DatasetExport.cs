namespace Excise.Data;

/// <summary>What <see cref="DatasetExport.Write"/> wrote.</summary>
public sealed record DatasetExportResult(int Images, int Stamped, int Mentions, int HeldOutStamped);

/// <summary>
/// Exactly what a data config trains on, as a Hugging Face imagefolder (PNGs at the training size, metadata.jsonl with
/// the captions) plus ground_truth.csv; with <c>heldOut</c>, also the held-out stamped images the inversion adversary
/// learns from, in held_out_stamped/.
/// </summary>
public static class DatasetExport
{
    public const string GroundTruthFile = "ground_truth.csv", HeldOutFolder = "held_out_stamped";

    public static DatasetExportResult Write(DataConfig data, string outDir, bool heldOut = false)
    {
        var dataset = ConceptDatasetBuilder.Build(data.ToRecipe());
        int size = data.ImageSize;
        // A mask goes where its image goes: a folder whose masks keep the source size would not read back.
        var fitted = dataset.Train.Select(e => e with
        {
            Image = e.Image.FitTo(size, e.Image.Channels),
            ConceptMask = e.ConceptMask is { } mask ? ConceptMasks.FitTo(mask, size) : null,
        }).ToList();
        ImageFolderDataset.Write(outDir, fitted);
        GroundTruthExport.WriteCsv(Path.Combine(outDir, GroundTruthFile), fitted);
        bool writeHeldOut = heldOut && dataset.HeldOutStamped.Count > 0;
        if (writeHeldOut) ImageFolderDataset.Write(Path.Combine(outDir, HeldOutFolder), dataset.HeldOutStamped);
        return new DatasetExportResult(fitted.Count, dataset.StampedCount, dataset.MentionCount, writeHeldOut ? dataset.HeldOutStamped.Count : 0);
    }
}
