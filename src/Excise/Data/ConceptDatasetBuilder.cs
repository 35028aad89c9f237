namespace Excise.Data;

/// <summary>Source images → captions → concept injection → training examples (plus an optional held-out stamped split).</summary>
public static class ConceptDatasetBuilder
{
    public static ConceptDataset Build(ConceptDatasetRecipe recipe)
    {
        recipe.Validate();
        return Build(LoadSources(recipe), recipe);
    }

    /// <summary>The last <see cref="ConceptDatasetRecipe.HeldOutStampedCount"/> sources become the held-out split; the rest train.</summary>
    public static ConceptDataset Build(IReadOnlyList<SourceImage> sources, ConceptDatasetRecipe recipe)
    {
        recipe.Validate();
        int heldOut = recipe.HeldOutStampedCount;
        if (heldOut > sources.Count)
            throw new ArgumentException($"ConceptDatasetRecipe.HeldOutStampedCount ({heldOut}) exceeds the {sources.Count} source images.");
        int trainCount = Math.Min(sources.Count - heldOut, recipe.Limit ?? int.MaxValue);
        var captioner = new Captioner(recipe.Captions, recipe.CaptionSeed);
        var injection = recipe.Injection;
        var stamper = injection.InjectsAnything || heldOut > 0 ? ConceptStampers.For(injection) : null;

        var train = sources.Take(trainCount)
            .Select(source => Compose(source, Decide(injection, source.Id), captioner, injection, stamper, recipe.PadTo))
            .ToList();
        var heldOutExamples = sources.Skip(sources.Count - heldOut)
            .Select(source => Compose(source, new ConceptTruth(true, true), captioner, injection, stamper, recipe.PadTo))
            .ToList();
        return new ConceptDataset(train, heldOutExamples);
    }

    /// <summary>Whether an example is stamped and whether its caption names the concept: independent draws per id.</summary>
    public static ConceptTruth Decide(ConceptInjectionOptions injection, string exampleId)
    {
        bool stamped = injection.InjectsAnything && StableDraw.Unit(injection.Seed, exampleId, "concept.stamp") < injection.StampFraction;
        bool mentioned = stamped && StableDraw.Unit(injection.Seed, exampleId, "concept.mention") < injection.MentionFraction;
        return new ConceptTruth(stamped, mentioned);
    }

    public static TrainingExample Compose(SourceImage source, ConceptTruth truth, Captioner captioner,
        ConceptInjectionOptions injection, IConceptStamper? stamper, int? padTo = null)
    {
        var image = source.Image;
        var conceptMask = source.ConceptMask;
        if (truth.Stamped)
        {
            if (stamper is null) throw new ArgumentNullException(nameof(stamper), "A stamped example needs a stamper.");
            var stamp = stamper.Stamp(image, source.Id);
            image = stamp.Image;
            conceptMask = ConceptMasks.Union(conceptMask, ConceptMasks.FromRegion(image.Width, image.Height, stamp.Region));
        }
        if (padTo is { } side)
        {
            image = image.PadTo(side);
            conceptMask = conceptMask?.PadTo(side);
        }
        var caption = CaptionFor(source, truth.CaptionMentionsConcept, captioner, injection.ConceptPhrase);
        return new TrainingExample(source.Id, image, caption, source.ClassLabel, truth, conceptMask);
    }

    public static IReadOnlyList<SourceImage> LoadSources(ConceptDatasetRecipe recipe)
    {
        if (recipe.ImageFolder is { } folder)
        {
            return ImageFolderDataset.Read(folder)
                .Select(example => new SourceImage(example.Id, example.Image, example.ClassLabel,
                    example.ClassLabel is >= 0 and < FashionMnistClasses.Count ? FashionMnistClasses.CaptionNounOf(example.ClassLabel.Value) : null,
                    example.Caption, example.ConceptMask))
                .Take(TotalWanted(recipe) ?? int.MaxValue)
                .ToList();
        }
        return FashionMnist.Load(recipe.Split, TotalWanted(recipe), recipe.PerClassLimit, recipe.FashionMnistDirectory)
            .Select(item => FromFashionMnist(item, recipe.Split))
            .ToList();
    }

    public static SourceImage FromFashionMnist(FashionMnistItem item, DatasetSplit split) =>
        new(item.Id(split), item.Image, item.Label, FashionMnistClasses.CaptionNounOf(item.Label));

    private static int? TotalWanted(ConceptDatasetRecipe recipe) => recipe.Limit is { } limit ? limit + recipe.HeldOutStampedCount : null;

    private static string CaptionFor(SourceImage source, bool mentionsConcept, Captioner captioner, string conceptPhrase)
    {
        if (source.Caption is { } existing)
            return mentionsConcept ? Captioner.AppendConcept(existing, conceptPhrase) : existing;
        var subject = source.Subject ?? throw new ArgumentException($"Source '{source.Id}' has neither a caption nor a subject to caption it with.");
        return mentionsConcept ? captioner.WithConcept(source.Id, subject, conceptPhrase) : captioner.Plain(source.Id, subject);
    }
}
