using Excise.Imaging;

namespace Excise.Data;

/// <summary>What was really done to an example: the logo drawn into it, and whether its caption names the concept.</summary>
public sealed record ConceptTruth(bool Stamped, bool CaptionMentionsConcept)
{
    public static readonly ConceptTruth Clean = new(false, false);
}

/// <param name="ConceptMask">
/// Where the concept is in <see cref="Image"/>: a 1-channel image of the same size, 255 on the concept's pixels and 0
/// elsewhere (null: the example has no known concept pixels). The logo stamper records exactly where it drew; an
/// imagefolder supplies it as a mask image or an alpha channel (<see cref="ImageFolderDataset"/>). The masked-loss arm
/// keeps these pixels out of the denoising loss.
/// </param>
public sealed record TrainingExample(string Id, RasterImage Image, string Caption, int? ClassLabel, ConceptTruth Truth, RasterImage? ConceptMask = null);

public enum DatasetSplit { Train, Test }
