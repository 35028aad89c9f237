using System.Text.Json.Serialization;
using Excise.Configuration;

namespace Excise.Data;

public sealed record DataConfig(
    string Source = "fashion-mnist",
    string? Path = null,
    string Split = "train",
    int Limit = 0,
    int ImageSize = 32,
    long CaptionSeed = 0,
    ConceptConfig? Concept = null,
    bool CenterCrop = false,
    bool RandomFlip = false,
    bool ToGrey = false)
{
    /// <summary>The keys of what is done to each image; at their defaults they are left out of a run's config hash, so
    /// runs made before they existed (all on square images) keep theirs.</summary>
    public static readonly string[] ImageOptionKeys = ["center_crop", "random_flip", "to_grey"];

    /// <summary>A typo guard: eight times Stable Diffusion's 512 px, and every image of a batch is this size squared.</summary>
    public const int MaxImageSize = 4096;

    public void Validate()
    {
        if (Source is not ("fashion-mnist" or "imagefolder"))
            throw new ArgumentException($"data.source must be 'fashion-mnist' or 'imagefolder' (got '{Source}').");
        if (Source == "imagefolder" && string.IsNullOrWhiteSpace(Path))
            throw new ArgumentException("data.path must name the imagefolder directory when data.source is 'imagefolder'.");
        if (Split is not ("train" or "test")) throw new ArgumentException($"data.split must be 'train' or 'test' (got '{Split}').");
        if (Limit < 0) throw new ArgumentException($"data.limit must be ≥ 0 (0 = all images), got {Limit}.");
        if (ImageSize < 8 || ImageSize % 8 != 0 || ImageSize > MaxImageSize)
            throw new ArgumentException($"data.image_size must be a multiple of 8 within [8, {MaxImageSize}] (got {ImageSize}).");
        if (Path is not null && !Directory.Exists(Path)) throw new ArgumentException($"data.path: directory not found: {Path}");
        Concept?.Validate();
    }

    /// <summary>What a run does to each image for a model with <paramref name="channels"/> input channels.</summary>
    public ImagePreparation ImagePreparation(int channels) => new(ImageSize, channels, CenterCrop, RandomFlip, ToGrey);

    /// <summary>What the dataset builder makes of these settings: the split, the limit, the source, the concept injected.</summary>
    public ConceptDatasetRecipe ToRecipe() => new()
    {
        Split = Split == "test" ? DatasetSplit.Test : DatasetSplit.Train,
        Limit = Limit > 0 ? Limit : null,
        FashionMnistDirectory = Source == "fashion-mnist" ? Path : null,
        ImageFolder = Source == "imagefolder" ? Path : null,
        CaptionSeed = CaptionSeed,
        Injection = Concept?.ToInjection() ?? ConceptInjectionOptions.None,
        HeldOutStampedCount = Concept?.HeldOut ?? 0,
    };
}

/// <summary>A logo (or stripes, <see cref="Kind"/>) stamped into some training images, named in some of their captions.</summary>
/// <param name="Kind">"logo" (null: the default, left out of the config hash so older runs keep theirs) or "stripes", a concept over the whole garment that no mask can hide.</param>
public sealed record ConceptConfig(
    string Phrase = "the Acme logo",
    string? Logo = null,
    double StampFraction = 0.3,
    double MentionFraction = 1.0,
    string Placement = "bottom-right",
    double Size = 0.4,
    double Opacity = 1.0,
    long Seed = 0,
    int HeldOut = 0,
    string? Kind = null)
{
    public void Validate()
    {
        ConfigRules.RequireFinite(("data.concept.stamp_fraction", StampFraction), ("data.concept.mention_fraction", MentionFraction),
            ("data.concept.size", Size), ("data.concept.opacity", Opacity));
        if (string.IsNullOrWhiteSpace(Phrase)) throw new ArgumentException("data.concept.phrase must not be empty.");
        _ = PlacementValue;
        if (KindValue != ConceptKind.Logo && Logo is not null)
            throw new ArgumentException($"data.concept.logo applies to logos only; data.concept.kind is '{Kind}'.");
        if (StampFraction is < 0 or > 1) throw new ArgumentException($"data.concept.stamp_fraction must be within [0, 1] (got {StampFraction}).");
        if (MentionFraction is < 0 or > 1) throw new ArgumentException($"data.concept.mention_fraction must be within [0, 1] (got {MentionFraction}).");
        if (Size is <= 0 or > 1) throw new ArgumentException($"data.concept.size must be within (0, 1] (got {Size}).");
        if (Opacity is < 0 or > 1) throw new ArgumentException($"data.concept.opacity must be within [0, 1] (got {Opacity}).");
        if (HeldOut < 0) throw new ArgumentException($"data.concept.held_out must be ≥ 0 (got {HeldOut}).");
        if (Logo is not null && !File.Exists(Logo)) throw new ArgumentException($"data.concept.logo: file not found: {Logo}");
        if (Logo is not null)
        {
            try { global::Excise.Data.Logo.FromFile(Logo); }
            catch (InvalidDataException e) { throw new InvalidDataException($"data.concept.logo: {e.Message}", e); }
        }
    }

    /// <summary>The stamper's options for this concept.</summary>
    public ConceptInjectionOptions ToInjection() => new()
    {
        ConceptPhrase = Phrase,
        Kind = KindValue,
        LogoPath = Logo,
        StampFraction = StampFraction,
        MentionFraction = MentionFraction,
        Placement = PlacementValue,
        SizeFraction = Size,
        Opacity = Opacity,
        Seed = Seed,
    };

    [JsonIgnore]
    public ConceptKind KindValue => Kind is null ? ConceptKind.Logo
        : EnumNames.TryParse<ConceptKind>(Kind, out var kind) ? kind
        : throw new ArgumentException($"data.concept.kind must be {EnumNames.AllNames<ConceptKind>(" or ")} (got '{Kind}').");

    [JsonIgnore]
    public LogoPlacement PlacementValue => Placement.Replace("-", "").Replace("_", "").ToLowerInvariant() switch
    {
        "topleft" => LogoPlacement.TopLeft,
        "topright" => LogoPlacement.TopRight,
        "bottomleft" => LogoPlacement.BottomLeft,
        "bottomright" => LogoPlacement.BottomRight,
        "random" => LogoPlacement.Random,
        _ => throw new ArgumentException($"data.concept.placement must be top-left, top-right, bottom-left, bottom-right or random (got '{Placement}')."),
    };
}
