using Excise.Data;
using Excise.Evaluation.Metrics;
using Excise.Imaging;
using static TorchSharp.torch;

namespace Excise.Evaluation.Judges;

/// <summary>
/// How a concept detector's judgement is turned into masks by occlusion: every <see cref="Patch"/>×<see cref="Patch"/>
/// square (stepped by <see cref="Stride"/>) of a flagged image is blacked out in turn, and a pixel's saliency is the mean
/// drop in the detector's logit over the squares that cover it. The mask is the pixels whose saliency reaches
/// <see cref="Threshold"/> × the image's highest.
/// </summary>
/// <param name="Patch">Side of the occluding square in the detector's 32-pixel frame. Default 8: about the logo's size at
/// its default scale (0.4 of a 28-pixel garment), so one square can hide most of it and the logit drops clearly.</param>
/// <param name="Stride">Step between squares. Default 4: 49 detector calls per flagged image (half the patch, so every
/// pixel is covered by up to four squares and the saliency is finer than the stride).</param>
/// <param name="Threshold">Share of the image's peak saliency a pixel needs to be masked; lower grows the mask (more of the
/// logo hidden, more of the garment lost). Default 0.3, chosen by mask quality on 2,000 held-out test garments (596
/// stamped) with the demo's detector, never by extraction: 0.3 / 0.5 / 0.7 gave mean IoU 0.76 / 0.75 / 0.47 and covered
/// 99.9% / 97.3% / 90.1% of the logo's pixels once grown by the 2-pixel margin, hiding 6.7% / 2.6% / 0.7% of the rest.
/// A defence fails by the logo pixels it leaves in, so at equal IoU the wider cut.</param>
public sealed record LocaliserSettings(int Patch = 8, int Stride = 4, double Threshold = 0.3)
{
    public void Validate()
    {
        if (Patch is < 1 or > JudgeInputs.Side) throw new ArgumentException($"the occlusion patch must be 1–{JudgeInputs.Side} pixels (got {Patch}).");
        if (Stride < 1 || Stride > Patch) throw new ArgumentException($"the occlusion stride must be 1–{Patch} pixels, at most the patch (got {Stride}).");
        if (!(Threshold is > 0 and <= 1)) throw new ArgumentException($"the saliency threshold must be in (0, 1] (got {Threshold}).");
    }
}

/// <summary>
/// How well masks made without ground truth match where the concept really is, over the images that carry it.
/// </summary>
/// <param name="Images">Images judged.</param>
/// <param name="Carrying">Images that really carry the concept (their ground-truth mask is not empty).</param>
/// <param name="Flagged">Images the detector flagged (and so got a mask).</param>
/// <param name="DetectionRecall">Share of the carrying images that were flagged: an image missed is learned unmasked.</param>
/// <param name="DetectionPrecision">Share of the flagged images that carry the concept: a false flag hides part of a clean garment.</param>
/// <param name="MeanIoU">Intersection over union of mask and truth, averaged over the carrying images (a missed image counts 0).</param>
/// <param name="Coverage">Share of all the concept's pixels that the masks cover: what the masked loss leaves out of what it should.</param>
/// <param name="CoverageWithMargin">The same once the masks are grown by the training's mask margin, as the loss uses them.</param>
/// <param name="MaskedShareOfRest">Share of the carrying images' other pixels that the masks hide: garment the model does not learn from.</param>
public sealed record MaskQuality(
    int Images,
    int Carrying,
    int Flagged,
    ProportionEstimate DetectionRecall,
    ProportionEstimate DetectionPrecision,
    [property: System.Text.Json.Serialization.JsonPropertyName("mean_iou")] double MeanIoU,
    double Coverage,
    double CoverageWithMargin,
    int Margin,
    double MaskedShareOfRest)
{
    /// <summary>Compares masks (null: none) with the ground truth, image by image (null truth: the image does not carry the concept).</summary>
    public static MaskQuality Measure(IReadOnlyList<RasterImage?> masks, IReadOnlyList<RasterImage?> truth, int margin)
    {
        if (masks.Count != truth.Count) throw new ArgumentException($"{masks.Count} masks for {truth.Count} ground-truth masks.");
        int carrying = 0, flagged = 0, flaggedCarrying = 0;
        long conceptPixels = 0, covered = 0, coveredWithMargin = 0, restPixels = 0, restMasked = 0;
        double iouSum = 0;
        for (int i = 0; i < masks.Count; i++)
        {
            var predicted = masks[i];
            var actual = truth[i] is { } t && t.Pixels.Any(p => p > 0) ? t : null;
            if (predicted is not null) flagged++;
            if (actual is null) continue;
            carrying++;
            if (predicted is null)
            {
                conceptPixels += actual.Pixels.Count(p => p > 0);
                restPixels += actual.Pixels.Count(p => p == 0);
                continue;
            }
            flaggedCarrying++;
            if (predicted.Width != actual.Width || predicted.Height != actual.Height)
                throw new ArgumentException($"mask {i} is {predicted.Width}x{predicted.Height}, its truth {actual.Width}x{actual.Height}.");
            var grown = ConceptMasks.Dilate(predicted.Pixels.Select(p => p > 0).ToArray(), predicted.Width, predicted.Height, margin);
            int intersection = 0, union = 0;
            for (int p = 0; p < actual.Pixels.Length; p++)
            {
                bool inTruth = actual.Pixels[p] > 0, inMask = predicted.Pixels[p] > 0;
                if (inTruth && inMask) intersection++;
                if (inTruth || inMask) union++;
                if (inTruth) { conceptPixels++; if (inMask) covered++; if (grown[p]) coveredWithMargin++; }
                else { restPixels++; if (inMask) restMasked++; }
            }
            iouSum += union == 0 ? 0 : intersection / (double)union;
        }
        static double Share(long part, long whole) => whole == 0 ? double.NaN : part / (double)whole;
        return new MaskQuality(masks.Count, carrying, flagged,
            ProportionEstimate.Wilson(flaggedCarrying, carrying), ProportionEstimate.Wilson(flaggedCarrying, flagged),
            carrying == 0 ? double.NaN : iouSum / carrying, Share(covered, conceptPixels), Share(coveredWithMargin, conceptPixels), margin,
            Share(restMasked, restPixels));
    }
}

/// <summary>
/// Masks from a concept detector alone, for users who know their concept but not where it is in each image: the
/// detector decides which images carry it (its threshold), occlusion decides where (<see cref="LocaliserSettings"/>).
/// </summary>
public static class ConceptLocaliser
{
    const float Occluded = -1f; // black, Fashion-MNIST's background: hiding a square removes what is there without adding a shape

    /// <summary>A concept mask per image, in the image's own frame (255 on the concept); null where the detector does not fire.</summary>
    public static RasterImage?[] Masks(ConceptDetector detector, IReadOnlyList<RasterImage> images, LocaliserSettings settings)
    {
        settings.Validate();
        var flagged = detector.Detect(images);
        var masks = new RasterImage?[images.Count];
        var origins = Origins(settings);
        int localised = 0;
        for (int i = 0; i < images.Count; i++)
        {
            if (!flagged[i]) continue;
            // Each saliency map runs hundreds of occluded forward passes: collect TorchSharp's finalisable handles every 200 images.
            if (++localised % 200 == 0) GC.Collect();
            var saliency = Saliency(detector, images[i], origins, settings.Patch);
            float peak = saliency.Max();
            if (!(peak > 0)) continue; // no square lowers the logit: nothing to point at, so no mask (the image is learned whole)
            var frame = RasterImage.Blank(JudgeInputs.Side, JudgeInputs.Side, 1);
            for (int p = 0; p < saliency.Length; p++)
                if (saliency[p] >= settings.Threshold * peak) frame.Pixels[p] = ConceptMasks.Concept;
            masks[i] = ToImageFrame(frame, images[i]);
        }
        return masks;
    }

    /// <summary>
    /// Masks for every training image of <paramref name="config"/>'s data (the images its run trains on, before any arm
    /// drops some), written as a mask folder with a quality.json; compared with the data's own masks where it has them.
    /// </summary>
    public static DetectorMaskReport WriteFolder(Training.RunConfig config, ConceptDetector detector, LocaliserSettings settings, string folder)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var examples = ConceptDatasetBuilder.Build(config.DataOrDefault.ToRecipe()).Train;
        var masks = Masks(detector, examples.Select(e => e.Image).ToList(), settings);
        ConceptMaskFolder.Write(folder, examples.Zip(masks).Where(p => p.Second is not null).Select(p => (p.First.Id, p.Second!)).ToList());
        var quality = examples.Any(e => e.ConceptMask is not null)
            ? MaskQuality.Measure(masks, examples.Select(e => e.ConceptMask).ToList(), config.SelectiveOrDefault.MaskMargin)
            : null;
        var report = new DetectorMaskReport(detector.Id, settings, masks.Count(m => m is not null), quality, clock.Elapsed.TotalSeconds);
        report.Save(folder);
        return report;
    }

    /// <summary>Top-left corners of the occluding squares; the last row and column reach the frame's edge.</summary>
    static IReadOnlyList<int> Origins(LocaliserSettings settings)
    {
        int last = JudgeInputs.Side - settings.Patch;
        var origins = new List<int>();
        for (int o = 0; o < last; o += settings.Stride) origins.Add(o);
        origins.Add(last);
        return origins;
    }

    /// <summary>Mean logit drop of the squares covering each pixel of the 32×32 frame (drops below zero count as zero).</summary>
    static float[] Saliency(ConceptDetector detector, RasterImage image, IReadOnlyList<int> origins, int patch)
    {
        const int side = JudgeInputs.Side;
        int squares = origins.Count * origins.Count;
        var unit = new float[JudgeInputs.PixelCount];
        JudgeInputs.WriteUnit(image, unit, 0);
        var batch = new float[(squares + 1) * JudgeInputs.PixelCount];
        unit.CopyTo(batch, 0); // the unoccluded image first
        int k = 1;
        foreach (int top in origins)
            foreach (int left in origins)
            {
                int offset = k++ * JudgeInputs.PixelCount;
                unit.CopyTo(batch, offset);
                for (int y = top; y < top + patch; y++)
                    Array.Fill(batch, Occluded, offset + y * side + left, patch);
            }
        var logits = detector.Logits(batch, squares + 1);
        var drop = new float[JudgeInputs.PixelCount];
        var cover = new int[JudgeInputs.PixelCount];
        k = 1;
        foreach (int top in origins)
            foreach (int left in origins)
            {
                float d = Math.Max(0f, logits[0] - logits[k++]);
                for (int y = top; y < top + patch; y++)
                    for (int x = left; x < left + patch; x++)
                    {
                        drop[y * side + x] += d;
                        cover[y * side + x]++;
                    }
            }
        for (int p = 0; p < drop.Length; p++) drop[p] = cover[p] == 0 ? 0 : drop[p] / cover[p];
        return drop;
    }

    /// <summary>
    /// A mask in the detector's frame back in the image's: the centre crop where the image was padded to it
    /// (Fashion-MNIST's 28 → 32), a resize otherwise (any pixel the concept touches counts, as for masks fitted to a model).
    /// </summary>
    static RasterImage ToImageFrame(RasterImage frame, RasterImage image)
    {
        if (image.Width == JudgeInputs.Side && image.Height == JudgeInputs.Side) return frame;
        if (image.Width <= JudgeInputs.Side && image.Height <= JudgeInputs.Side && image.Width == image.Height)
        {
            int left = (JudgeInputs.Side - image.Width) / 2, top = (JudgeInputs.Side - image.Height) / 2;
            var cropped = RasterImage.Blank(image.Width, image.Height, 1);
            for (int y = 0; y < image.Height; y++)
                Array.Copy(frame.Pixels, (top + y) * JudgeInputs.Side + left, cropped.Pixels, y * image.Width, image.Width);
            return cropped;
        }
        var resized = frame.ResizeTo(image.Width, image.Height);
        return resized with { Pixels = resized.Pixels.Select(p => p > 0 ? ConceptMasks.Concept : (byte)0).ToArray() };
    }
}

/// <summary>quality.json beside a mask folder made by a detector: what made it and how well it matches the ground truth.</summary>
/// <param name="Quality">Null when the data has no ground truth to compare with (an imagefolder without masks).</param>
public sealed record DetectorMaskReport(string DetectorId, LocaliserSettings Settings, int Masks, MaskQuality? Quality, double Seconds)
{
    public const string FileName = "quality.json";

    public void Save(string folder) => Serialization.AtomicFile.WriteAllText(Path.Combine(folder, FileName), System.Text.Json.JsonSerializer.Serialize(this, Serialization.RecordJson.Options));
}
