using Excise.Imaging;

namespace Excise.Data;

/// <summary>
/// Everything that decides a concept dataset. Same recipe, same data: every random choice is drawn from
/// (seed, example id), never from load order.
/// </summary>
public sealed record ConceptDatasetRecipe
{
    /// <summary>Fashion-MNIST split used when <see cref="ImageFolder"/> is null.</summary>
    public DatasetSplit Split { get; init; } = DatasetSplit.Train;

    /// <summary>Training examples to keep (first N in file order); null keeps all.</summary>
    public int? Limit { get; init; }

    public int? PerClassLimit { get; init; }

    public string? FashionMnistDirectory { get; init; }

    /// <summary>Read source images from this Hugging Face imagefolder instead of Fashion-MNIST (its captions are kept).</summary>
    public string? ImageFolder { get; init; }

    public CaptionTemplates Captions { get; init; } = CaptionTemplates.Default;

    public long CaptionSeed { get; init; }

    public ConceptInjectionOptions Injection { get; init; } = new();

    /// <summary>
    /// Extra source images, disjoint from the training ones (they follow them in source order), all stamped and all
    /// captioned with the concept: material for an adversary trying to re-teach the concept.
    /// </summary>
    public int HeldOutStampedCount { get; init; }

    /// <summary>Pad images (after stamping) to this square side, e.g. 32 for a model built for 32x32; null keeps the size.</summary>
    public int? PadTo { get; init; }

    public static ConceptDatasetRecipe Clean => new() { Injection = ConceptInjectionOptions.None };

    public void Validate()
    {
        if (Limit is < 0) throw new ArgumentOutOfRangeException(nameof(Limit), Limit, $"ConceptDatasetRecipe.Limit must be >= 0, got {Limit}.");
        if (PerClassLimit is < 0) throw new ArgumentOutOfRangeException(nameof(PerClassLimit), PerClassLimit, $"ConceptDatasetRecipe.PerClassLimit must be >= 0, got {PerClassLimit}.");
        if (HeldOutStampedCount < 0) throw new ArgumentOutOfRangeException(nameof(HeldOutStampedCount), HeldOutStampedCount, $"ConceptDatasetRecipe.HeldOutStampedCount must be >= 0, got {HeldOutStampedCount}.");
        if (PadTo is < 1) throw new ArgumentOutOfRangeException(nameof(PadTo), PadTo, $"ConceptDatasetRecipe.PadTo must be positive, got {PadTo}.");
        Captions.Validate();
        Injection.Validate();
    }
}

/// <summary>An image before captioning and injection. <paramref name="Subject"/> fills caption templates; an existing
/// <paramref name="Caption"/> (imagefolder sources) is used as-is instead.</summary>
/// <param name="ConceptMask">Where the source already shows the concept (an imagefolder's mask), 255 on its pixels; see <see cref="TrainingExample.ConceptMask"/>.</param>
public sealed record SourceImage(string Id, RasterImage Image, int? ClassLabel, string? Subject, string? Caption = null, RasterImage? ConceptMask = null);

public sealed record ConceptDataset(IReadOnlyList<TrainingExample> Train, IReadOnlyList<TrainingExample> HeldOutStamped)
{
    public int StampedCount => Train.Count(example => example.Truth.Stamped);
    public int MentionCount => Train.Count(example => example.Truth.CaptionMentionsConcept);
}
