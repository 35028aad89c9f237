namespace Excise.Data;

/// <summary>What was really done to an example: the logo drawn into it, and whether its caption names the concept.</summary>
public sealed record ConceptTruth(bool Stamped, bool CaptionMentionsConcept)
{
    public static readonly ConceptTruth Clean = new(false, false);
}

public sealed record TrainingExample(string Id, RasterImage Image, string Caption, int? ClassLabel, ConceptTruth Truth);

public enum DatasetSplit { Train, Test }
