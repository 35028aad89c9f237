using Excise.Data;
using Excise.Torch;

namespace Excise.Evaluation.Judges;

/// <summary>Builds the detector's training, validation and held-out images from real Fashion-MNIST images.</summary>
internal sealed class DetectorExamples(ConceptInjectionOptions injection, StampAugmentation augmentation)
{
    public const double HeldOutBlurSigma = 0.8;
    public const double HeldOutNoiseSigma = 0.1;
    public const int HeldOutShift = 2;

    private readonly StampVariations _stamps = new(injection);

    /// <summary>
    /// One augmented example, stamped with probability ½. Every random draw is made whatever the class, so a
    /// positive and a negative drawn from the same generator see the same blur and noise distribution.
    /// </summary>
    public (RasterImage Image, bool Stamped) Augmented(RasterImage source, string exampleId, Random random)
    {
        bool stamped = random.NextDouble() < 0.5;
        double sizeScale = Between(random, augmentation.MinSizeScale, 1);
        double opacityScale = Between(random, augmentation.MinOpacityScale, 1);
        bool shift = random.NextDouble() < 0.5;
        int dx = random.Next(-augmentation.MaxShift, augmentation.MaxShift + 1), dy = random.Next(-augmentation.MaxShift, augmentation.MaxShift + 1);
        bool partial = random.NextDouble() < augmentation.PartialProbability;
        var half = (HalfSide)random.Next(4);
        bool blur = random.NextDouble() < augmentation.BlurProbability;
        double blurSigma = Between(random, Math.Min(0.4, augmentation.MaxBlurSigma), augmentation.MaxBlurSigma);
        bool noise = random.NextDouble() < augmentation.NoiseProbability;
        double noiseSigma = Between(random, 0.2 * augmentation.MaxNoiseSigma, augmentation.MaxNoiseSigma);
        int noiseSeed = random.Next();
        bool brightness = random.NextDouble() < augmentation.BrightnessProbability;
        double gain = Between(random, 0.6, 1.2);
        bool flat = random.NextDouble() < augmentation.FlatFieldProbability;
        byte level = (byte)random.Next(256);

        if (flat) source = RasterImage.Blank(source.Width, source.Height, source.Channels, level);
        else if (brightness) source = Scaled(source, gain);
        var image = source;
        if (stamped)
        {
            var stamp = _stamps.Stamp(source, exampleId, sizeScale, opacityScale, shift ? dx : 0, shift ? dy : 0);
            image = partial ? ImageDegradations.RemoveHalf(stamp.Image, source, stamp.Region, half) : stamp.Image;
        }
        image = JudgeInputs.Fit(image);
        if (blur) image = ImageDegradations.GaussianBlur(image, blurSigma);
        if (noise) image = ImageDegradations.AddNoise(image, noiseSigma, new Random(noiseSeed));
        return (image, stamped);
    }

    /// <summary>
    /// Held-out conditions: each test image once clean and once stamped, under the run's exact stamp and under each
    /// imperfection a generated logo may show. Blur and noise degrade both classes; the others only change the stamp.
    /// </summary>
    public IEnumerable<(string Name, string Description, List<RasterImage> Images, List<bool> Labels)> HeldOutConditions(
        IReadOnlyList<FashionMnistItem> test, long seed)
    {
        var ids = test.Select(item => item.Id(DatasetSplit.Test)).ToList();
        var clean = test.Select(item => item.Image).ToList();

        (List<RasterImage>, List<bool>) Pairs(Func<int, RasterImage> stamped, Func<RasterImage, int, RasterImage>? degrade = null)
        {
            var images = new List<RasterImage>(2 * test.Count);
            var labels = new List<bool>(2 * test.Count);
            for (int i = 0; i < test.Count; i++)
            {
                var negative = JudgeInputs.Fit(clean[i]);
                var positive = JudgeInputs.Fit(stamped(i));
                images.Add(degrade is null ? negative : degrade(negative, 2 * i));
                labels.Add(false);
                images.Add(degrade is null ? positive : degrade(positive, 2 * i + 1));
                labels.Add(true);
            }
            return (images, labels);
        }

        RasterImage Exact(int i) => _stamps.Stamp(clean[i], ids[i]).Image;
        string at = $"size {injection.SizeFraction:0.###}, opacity {injection.Opacity:0.###}";

        var (images, labels) = Pairs(Exact);
        yield return ("default", $"the run's stamp ({at})", images, labels);

        double smallSize = injection.SizeFraction * augmentation.MinSizeScale, faintOpacity = injection.Opacity * augmentation.MinOpacityScale;
        (images, labels) = Pairs(i => _stamps.Stamp(clean[i], ids[i], augmentation.MinSizeScale, augmentation.MinOpacityScale).Image);
        yield return ("small-faint", $"smallest and faintest trained stamp (size {smallSize:0.###}, opacity {faintOpacity:0.###})", images, labels);

        (images, labels) = Pairs(i =>
        {
            int direction = i % 4;
            return _stamps.Stamp(clean[i], ids[i], dx: direction < 2 ? (direction == 0 ? -HeldOutShift : HeldOutShift) : 0,
                dy: direction >= 2 ? (direction == 2 ? -HeldOutShift : HeldOutShift) : 0).Image;
        });
        yield return ("shifted", $"stamp moved {HeldOutShift} px left, right, up or down", images, labels);

        (images, labels) = Pairs(Exact, (image, _) => ImageDegradations.GaussianBlur(image, HeldOutBlurSigma));
        yield return ("blur", $"both classes blurred (Gaussian sigma {HeldOutBlurSigma} px)", images, labels);

        (images, labels) = Pairs(Exact, (image, k) => ImageDegradations.AddNoise(image, HeldOutNoiseSigma, new Random(SeedMixer.DeriveInt(seed, 77, k))));
        yield return ("noise", $"both classes with Gaussian noise (sigma {HeldOutNoiseSigma} in [-1, 1] units)", images, labels);

        (images, labels) = Pairs(i =>
        {
            var stamp = _stamps.Stamp(clean[i], ids[i]);
            return ImageDegradations.RemoveHalf(stamp.Image, clean[i], stamp.Region, (HalfSide)(i % 4));
        });
        yield return ("partial", "half of the logo missing (left, right, top or bottom half)", images, labels);
    }

    private static RasterImage Scaled(RasterImage image, double gain) =>
        image with { Pixels = image.Pixels.Select(p => (byte)Math.Clamp(Math.Round(p * gain), 0, 255)).ToArray() };

    private static double Between(Random random, double low, double high) => low + (high - low) * random.NextDouble();
}
