using Excise.Data;
using Excise.Torch;
using Excise.Imaging;

namespace Excise.Evaluation.Judges;

/// <summary>Builds the detector's training, validation and held-out images from real Fashion-MNIST images.</summary>
internal sealed class DetectorExamples(ConceptInjectionOptions injection, StampAugmentation augmentation)
{
    public const double HeldOutBlurSigma = 0.8;
    public const double HeldOutNoiseSigma = 0.1;
    public const int HeldOutShift = 2;

    private readonly StampVariations stamps = new(injection);

    /// <summary>
    /// One augmented example, stamped with probability ½. Every random draw is made whatever the class, so a
    /// positive and a negative drawn from the same generator see the same backgrounds, blur and noise: a share of the
    /// garments is replaced by an off-distribution background (<see cref="HardBackground"/>), which is a hard negative
    /// when unstamped and the logo on an odd background when stamped, so the logo's shape, not "something odd", decides.
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
        bool hard = random.NextDouble() < augmentation.HardBackgroundProbability;
        var background = BackgroundDraws[random.Next(BackgroundDraws.Length)];
        int backgroundSeed = random.Next();

        if (flat) source = RasterImage.Blank(source.Width, source.Height, source.Channels, level);
        else if (brightness) source = Scaled(source, gain);
        var frame = hard ? Background(background, source, exampleId, new Random(backgroundSeed)) : JudgeInputs.Fit(source);
        var image = frame;
        if (hard && background is HardBackground.UniformNoise or HardBackground.GaussianNoise or HardBackground.SmoothNoise)
        {
            // On pixel noise a faint or half logo is noise itself; training it as a positive taught the detector to
            // call noise a logo (3% of uniform noise scored above 0.68). On noise the logo is whole and opaque.
            opacityScale = 1;
            partial = false;
        }
        if (stamped)
        {
            var centre = OffDistributionImages.Centre(frame);
            var stamp = stamps.Stamp(centre, exampleId, sizeScale, opacityScale, shift ? dx : 0, shift ? dy : 0);
            image = OffDistributionImages.WithCentre(frame, partial ? ImageDegradations.RemoveHalf(stamp.Image, centre, stamp.Region, half) : stamp.Image);
        }
        if (blur) image = ImageDegradations.GaussianBlur(image, blurSigma);
        if (noise) image = ImageDegradations.AddNoise(image, noiseSigma, new Random(noiseSeed));
        return (image, stamped);
    }

    /// <summary>What a hard background is drawn from.</summary>
    public enum HardBackground { UniformNoise, GaussianNoise, SmoothNoise, DegradedGarment, InvertedGarment, GarmentFragment, MarksInLogoCorner }

    /// <summary>
    /// One draw picks one entry: smooth noise twice as often as the others, as it is what a diffusion model's failed
    /// samples look like and the hardest to tell from a blurred logo (the first detector fired on a third of it).
    /// </summary>
    static readonly HardBackground[] BackgroundDraws = [.. Enum.GetValues<HardBackground>(), HardBackground.SmoothNoise];

    /// <summary>Smooth-noise scales trained on; the held-out smooth noise uses a scale between the two bands.</summary>
    public const double SmoothScaleLow = 0.5, SmoothScaleLowTop = 1.8, SmoothScaleHighBottom = 2.6, SmoothScaleHigh = 6;
    public const double HeldOutSmoothScale = 2.2;
    /// <summary>Heavy degradation of the hard-negative garments: beyond the positives' blur (≤ 1.2 px) and noise (≤ 0.15).</summary>
    public const double HeavyBlurLow = 1.5, HeavyBlurHigh = 3, HeavyNoiseLow = 0.2, HeavyNoiseHigh = 0.5;
    public const double HeldOutHeavyBlur = 2, HeldOutHeavyNoise = 0.3;

    private RasterImage Background(HardBackground kind, RasterImage garment, string exampleId, Random random)
    {
        switch (kind)
        {
            case HardBackground.UniformNoise:
                {
                    // Half over the full range, half over a random sub-range of at least 64 levels (dim or bright noise).
                    if (random.NextDouble() < 0.5) return OffDistributionImages.UniformNoise(random);
                    int low = random.Next(0, 192), high = random.Next(low + 64, 256);
                    return OffDistributionImages.UniformNoise(random, low, high);
                }
            case HardBackground.GaussianNoise:
                return OffDistributionImages.GaussianNoise(random, Between(random, 40, 215), Between(random, 0.15, 0.8));
            case HardBackground.SmoothNoise:
                {
                    double scale = random.NextDouble() < 0.5 ? Between(random, SmoothScaleLow, SmoothScaleLowTop) : Between(random, SmoothScaleHighBottom, SmoothScaleHigh);
                    return OffDistributionImages.SmoothNoise(random, scale, Between(random, 40, 215), Between(random, 20, 90));
                }
            case HardBackground.DegradedGarment:
                return OffDistributionImages.Degraded(garment, Between(random, HeavyBlurLow, HeavyBlurHigh), Between(random, HeavyNoiseLow, HeavyNoiseHigh), random);
            case HardBackground.InvertedGarment:
                return OffDistributionImages.Inverted(garment);
            case HardBackground.GarmentFragment:
                return OffDistributionImages.Fragment(garment, random);
            case HardBackground.MarksInLogoCorner:
                {
                    // Where the run's stamp would go on this garment, in frame coordinates, widened by 2 px.
                    var box = stamps.Stamp(garment, exampleId).LogoBox;
                    int margin = 2, offset = OffDistributionImages.GarmentOffset;
                    var area = new PixelRect(box.Left + offset - margin, box.Top + offset - margin, box.Width + 2 * margin, box.Height + 2 * margin);
                    return OffDistributionImages.MarksIn(garment, area, random);
                }
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown hard background.");
        }
    }

    /// <summary>
    /// Held-out off-distribution images, never trained on (their own seed stream, test-split garments, and a smooth-noise
    /// scale and fixed noise levels the training draws do not use exactly): each image once without a logo (a firing is
    /// a false positive) and once with the run's exact stamp on it (a firing is a hit).
    /// </summary>
    public IEnumerable<(string Name, string Description, List<RasterImage> Clean, List<RasterImage> Stamped)> OffDistributionConditions(
        IReadOnlyList<FashionMnistItem> test, long seed)
    {
        (List<RasterImage>, List<RasterImage>) Frames(int stream, int count, Func<int, Random, RasterImage> frame)
        {
            var clean = new List<RasterImage>(count);
            var stamped = new List<RasterImage>(count);
            for (int i = 0; i < count; i++)
            {
                var image = frame(i, new Random(SeedMixer.DeriveInt(seed, OffDistributionSeedStream + stream, i)));
                clean.Add(image);
                var centre = OffDistributionImages.Centre(image);
                stamped.Add(OffDistributionImages.WithCentre(image, stamps.Stamp(centre, $"off-distribution:{stream}:{i}").Image));
            }
            return (clean, stamped);
        }

        int n = test.Count;
        var (clean, stamped) = Frames(0, n, (_, r) => OffDistributionImages.UniformNoise(r));
        yield return ("uniform-noise", "every pixel uniform in 0..255", clean, stamped);
        (clean, stamped) = Frames(1, n, (_, r) => OffDistributionImages.GaussianNoise(r, 127.5, 0.5));
        yield return ("gaussian-noise", "mid-grey with Gaussian noise (sigma 0.5 in [-1, 1] units)", clean, stamped);
        (clean, stamped) = Frames(2, n, (_, r) => OffDistributionImages.SmoothNoise(r, HeldOutSmoothScale, Between(r, 64, 192), Between(r, 30, 80)));
        yield return ("smooth-noise", $"noise blurred at {HeldOutSmoothScale} px (a scale not trained on), contrast-stretched", clean, stamped);
        (clean, stamped) = Frames(3, n, (i, r) => OffDistributionImages.Degraded(test[i].Image, HeldOutHeavyBlur, HeldOutHeavyNoise, r));
        yield return ("degraded-garments", $"test garments blurred (sigma {HeldOutHeavyBlur} px) and noised (sigma {HeldOutHeavyNoise})", clean, stamped);
        (clean, stamped) = Frames(4, n, (i, _) => OffDistributionImages.Inverted(test[i].Image));
        yield return ("inverted-garments", "test garments in negative", clean, stamped);
        (clean, stamped) = Frames(5, 256, (i, _) => RasterImage.Blank(OffDistributionImages.Side, OffDistributionImages.Side, 1, (byte)i));
        yield return ("flat-fields", "flat grey fields, each level 0..255 once", clean, stamped);
    }

    /// <summary>Seed stream of the held-out off-distribution images (training uses 400 + epoch, validation 900, the noisy held-out set 77).</summary>
    const int OffDistributionSeedStream = 7000, HeldOutNoiseStream = 77;

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

        RasterImage Exact(int i) => stamps.Stamp(clean[i], ids[i]).Image;
        string at = $"size {injection.SizeFraction:0.###}, opacity {injection.Opacity:0.###}";

        var (images, labels) = Pairs(Exact);
        yield return ("default", $"the run's stamp ({at})", images, labels);

        double smallSize = injection.SizeFraction * augmentation.MinSizeScale, faintOpacity = injection.Opacity * augmentation.MinOpacityScale;
        (images, labels) = Pairs(i => stamps.Stamp(clean[i], ids[i], augmentation.MinSizeScale, augmentation.MinOpacityScale).Image);
        yield return ("small-faint", $"smallest and faintest trained stamp (size {smallSize:0.###}, opacity {faintOpacity:0.###})", images, labels);

        (images, labels) = Pairs(i =>
        {
            int direction = i % 4;
            return stamps.Stamp(clean[i], ids[i], dx: direction < 2 ? (direction == 0 ? -HeldOutShift : HeldOutShift) : 0,
                dy: direction >= 2 ? (direction == 2 ? -HeldOutShift : HeldOutShift) : 0).Image;
        });
        yield return ("shifted", $"stamp moved {HeldOutShift} px left, right, up or down", images, labels);

        (images, labels) = Pairs(Exact, (image, _) => ImageDegradations.GaussianBlur(image, HeldOutBlurSigma));
        yield return ("blur", $"both classes blurred (Gaussian sigma {HeldOutBlurSigma} px)", images, labels);

        (images, labels) = Pairs(Exact, (image, k) => ImageDegradations.AddNoise(image, HeldOutNoiseSigma, new Random(SeedMixer.DeriveInt(seed, HeldOutNoiseStream, k))));
        yield return ("noise", $"both classes with Gaussian noise (sigma {HeldOutNoiseSigma} in [-1, 1] units)", images, labels);

        (images, labels) = Pairs(i =>
        {
            var stamp = stamps.Stamp(clean[i], ids[i]);
            return ImageDegradations.RemoveHalf(stamp.Image, clean[i], stamp.Region, (HalfSide)(i % 4));
        });
        yield return ("partial", "half of the logo missing (left, right, top or bottom half)", images, labels);
    }

    private static RasterImage Scaled(RasterImage image, double gain) =>
        image with { Pixels = image.Pixels.Select(p => (byte)Math.Clamp(Math.Round(p * gain), 0, 255)).ToArray() };

    private static double Between(Random random, double low, double high) => low + (high - low) * random.NextDouble();
}
