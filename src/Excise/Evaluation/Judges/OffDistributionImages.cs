using Excise.Data;
using Excise.Imaging;

namespace Excise.Evaluation.Judges;

/// <summary>
/// Images that are not Fashion-MNIST garments but that a diffusion model can produce when it fails or is pushed off its
/// distribution (an inversion adversary's samples, an over-unlearned model): pixel noise, smooth noise fields, garments
/// degraded beyond recognition, inverted garments, garment fragments, marks in the logo's corner. The detector trains on
/// them as hard negatives (and with the logo stamped on them as positives), and its false-positive rate on held-out
/// draws of them is reported. All are full 32×32 frames, as a generated sample is, in 8-bit grey.
/// </summary>
public static class OffDistributionImages
{
    public const int Side = JudgeInputs.Side;

    /// <summary>Every pixel independently uniform in [low, high] grey levels.</summary>
    public static RasterImage UniformNoise(Random random, int low = 0, int high = 255)
    {
        var pixels = new byte[Side * Side];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (byte)random.Next(low, high + 1);
        return new RasterImage(Side, Side, 1, pixels);
    }

    /// <summary>White Gaussian noise around <paramref name="mean"/> grey levels with <paramref name="sigma"/> in [−1, 1] units, clamped.</summary>
    public static RasterImage GaussianNoise(Random random, double mean, double sigma) =>
        ImageDegradations.AddNoise(RasterImage.Blank(Side, Side, 1, (byte)Math.Clamp(Math.Round(mean), 0, 255)), sigma, random);

    /// <summary>
    /// Low-frequency noise: white noise blurred at <paramref name="scale"/> px, then stretched to the given mean and
    /// standard deviation in grey levels — the blotchy texture of a diffusion model's failed samples.
    /// </summary>
    public static RasterImage SmoothNoise(Random random, double scale, double mean, double std)
    {
        var white = new float[Side * Side];
        for (int i = 0; i < white.Length; i++) white[i] = (float)ImageDegradations.Normal(random);
        var field = ImageDegradations.GaussianBlur(white, Side, Side, 1, scale);
        double average = field.Average(), deviation = Math.Sqrt(field.Average(v => (v - average) * (v - average)));
        double gain = deviation > 1e-9 ? std / deviation : 0;
        return new RasterImage(Side, Side, 1, field.Select(v => ImageDegradations.ToByte((float)(mean + gain * (v - average)))).ToArray());
    }

    /// <summary>A garment far worse than a generated logo is allowed to be: blurred and noised past the positives' augmentation.</summary>
    public static RasterImage Degraded(RasterImage garment, double blurSigma, double noiseSigma, Random random) =>
        ImageDegradations.AddNoise(ImageDegradations.GaussianBlur(JudgeInputs.Fit(garment), blurSigma), noiseSigma, random);

    /// <summary>The garment's negative (a white background and a dark garment).</summary>
    public static RasterImage Inverted(RasterImage garment)
    {
        var fitted = JudgeInputs.Fit(garment);
        return fitted with { Pixels = fitted.Pixels.Select(p => (byte)(255 - p)).ToArray() };
    }

    /// <summary>A random square patch of the garment (8–16 px) enlarged to the whole frame: garment texture without a garment.</summary>
    public static RasterImage Fragment(RasterImage garment, Random random)
    {
        var fitted = JudgeInputs.Fit(garment);
        int size = random.Next(8, 17), left = random.Next(0, Side - size + 1), top = random.Next(0, Side - size + 1);
        var patch = new byte[size * size];
        for (int y = 0; y < size; y++)
            Array.Copy(fitted.Pixels, (top + y) * Side + left, patch, y * size, size);
        return new RasterImage(size, size, 1, patch).ResizeTo(Side, Side);
    }

    /// <summary>
    /// Random strokes and blobs drawn inside <paramref name="area"/> (where the logo would go): marks that are not the
    /// logo, so "something in the corner" is not taken for it.
    /// </summary>
    public static RasterImage MarksIn(RasterImage frame, PixelRect area, Random random)
    {
        var pixels = (byte[])JudgeInputs.Fit(frame).Pixels.Clone();
        int marks = random.Next(1, 4);
        for (int m = 0; m < marks; m++)
        {
            byte level = (byte)random.Next(96, 256);
            if (random.NextDouble() < 0.5)
            {
                // A stroke 1–2 px wide between two points of the area.
                double x0 = area.Left + random.NextDouble() * area.Width, y0 = area.Top + random.NextDouble() * area.Height;
                double x1 = area.Left + random.NextDouble() * area.Width, y1 = area.Top + random.NextDouble() * area.Height;
                int width = random.Next(1, 3), steps = (int)Math.Ceiling(2 * Math.Max(Math.Abs(x1 - x0), Math.Abs(y1 - y0))) + 1;
                for (int s = 0; s <= steps; s++)
                {
                    double t = s / (double)steps;
                    Paint(pixels, (int)(x0 + t * (x1 - x0)), (int)(y0 + t * (y1 - y0)), width, level);
                }
            }
            else
            {
                // A filled ellipse of 2–6 px radii.
                double cx = area.Left + random.NextDouble() * area.Width, cy = area.Top + random.NextDouble() * area.Height;
                double rx = 2 + 4 * random.NextDouble(), ry = 2 + 4 * random.NextDouble();
                for (int y = (int)(cy - ry); y <= (int)(cy + ry); y++)
                    for (int x = (int)(cx - rx); x <= (int)(cx + rx); x++)
                        if ((x - cx) * (x - cx) / (rx * rx) + (y - cy) * (y - cy) / (ry * ry) <= 1) Paint(pixels, x, y, 1, level);
            }
        }
        return new RasterImage(Side, Side, 1, pixels);
    }

    private static void Paint(byte[] pixels, int x, int y, int width, byte level)
    {
        for (int dy = 0; dy < width; dy++)
            for (int dx = 0; dx < width; dx++)
            {
                int px = x + dx, py = y + dy;
                if (px >= 0 && px < Side && py >= 0 && py < Side) pixels[py * Side + px] = level;
            }
    }

    /// <summary>A 32×32 frame holds a padded 28×28 garment at offset 2: its centre is where a garment's stamp goes.</summary>
    public const int GarmentSide = FashionMnist.ImageSide;
    public const int GarmentOffset = (Side - GarmentSide) / 2;

    public static RasterImage Centre(RasterImage frame)
    {
        var pixels = new byte[GarmentSide * GarmentSide];
        for (int y = 0; y < GarmentSide; y++)
            Array.Copy(frame.Pixels, (GarmentOffset + y) * Side + GarmentOffset, pixels, y * GarmentSide, GarmentSide);
        return new RasterImage(GarmentSide, GarmentSide, 1, pixels);
    }

    /// <summary>The frame with its centre replaced by <paramref name="centre"/> (a stamped copy of <see cref="Centre"/>).</summary>
    public static RasterImage WithCentre(RasterImage frame, RasterImage centre)
    {
        var pixels = (byte[])frame.Pixels.Clone();
        for (int y = 0; y < GarmentSide; y++)
            Array.Copy(centre.Pixels, y * GarmentSide, pixels, (GarmentOffset + y) * Side + GarmentOffset, GarmentSide);
        return frame with { Pixels = pixels };
    }
}
