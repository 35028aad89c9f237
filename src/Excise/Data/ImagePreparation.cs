using Excise.Imaging;

namespace Excise.Data;

/// <summary>
/// What a training run does to users' images before the model sees them, with the options of diffusers' training
/// scripts: the resolution (data.image_size: the shorter side is resized to it), a centre or a random square crop
/// (data.center_crop), a random horizontal flip (data.random_flip). Colour is never dropped silently: a colour image
/// for a one-channel model needs data.to_grey; grey images for a colour model are repeated to RGB, which loses nothing.
/// Images already at the model's size pass unchanged, and small square ones (Fashion-MNIST's 28 for 32) are padded.
/// </summary>
/// <param name="Size">The model's square input (data.image_size, which must equal the UNet's sample_size).</param>
/// <param name="Channels">The model's input channels.</param>
/// <param name="CenterCrop">Crop non-square images at the centre; otherwise a crop is drawn per step (diffusers' default).</param>
/// <param name="RandomFlip">Mirror each drawn image left to right with probability ½, per step.</param>
/// <param name="ToGrey">Convert colour images for a one-channel model (ITU-R BT.601 luma).</param>
public sealed record ImagePreparation(int Size, int Channels, bool CenterCrop, bool RandomFlip, bool ToGrey)
{
    /// <summary>
    /// The image at the model's channels with its shorter side at <see cref="Size"/>: square (fitted as
    /// <see cref="RasterImage.FitTo"/> fits it) unless it is to be cropped per step, when it keeps its aspect.
    /// </summary>
    public RasterImage Prepare(RasterImage image, string id)
    {
        var coloured = WithModelChannels(image, id);
        return CenterCrop || IsPaddedOrExact(coloured) ? coloured.FitTo(Size, Channels) : coloured.ShorterSideTo(Size);
    }

    /// <summary>The size <see cref="Prepare"/> gives an image of this size.</summary>
    public (int Width, int Height) PreparedSize(int width, int height) =>
        CenterCrop || (width == height && width <= Size) ? (Size, Size) : RasterImage.ShorterSideSize(width, height, Size);

    /// <summary>A concept mask given the same geometry as its image's <see cref="Prepare"/> (one channel, not thresholded).</summary>
    public RasterImage PrepareMask(RasterImage mask) =>
        CenterCrop || IsPaddedOrExact(mask) ? mask.FitTo(Size, 1) : mask.ShorterSideTo(Size);

    /// <summary>Whether a prepared image is wider or taller than the model's square, so a crop is drawn from it.</summary>
    public bool NeedsCrop(RasterImage prepared) => prepared.Width != Size || prepared.Height != Size;

    /// <summary>One line for the run's log: what the images were and what was done to them.</summary>
    public string Describe(IReadOnlyList<RasterImage> originals, IReadOnlyList<RasterImage> prepared)
    {
        var sizes = originals.GroupBy(i => (i.Width, i.Height)).OrderByDescending(g => g.Count()).ToList();
        string sizeText = sizes.Count == 1 ? $"{sizes[0].Key.Width}×{sizes[0].Key.Height}"
            : $"{sizes.Count} sizes ({string.Join(", ", sizes.Take(3).Select(g => $"{g.Count()} at {g.Key.Width}×{g.Key.Height}"))}{(sizes.Count > 3 ? ", …" : "")})";
        int colour = originals.Count(i => !IsGrey(i)), greyStoredAsRgb = originals.Count(i => i.Channels == 3 && IsGrey(i));
        var done = new List<string>();
        int padded = originals.Count(i => i.Width == i.Height && i.Width < Size);
        int resized = originals.Count(i => !(i.Width == i.Height && i.Width <= Size));
        if (padded > 0) done.Add($"{padded} padded to {Size}×{Size}");
        if (resized > 0) done.Add($"{resized} resized to a shorter side of {Size}");
        int cropped = prepared.Count(NeedsCrop);
        if (CenterCrop && resized > 0) done.Add("cropped at the centre to a square");
        if (cropped > 0) done.Add($"{cropped} cropped to {Size}×{Size} at a position drawn each step (data.center_crop=true crops at the centre)");
        if (Channels == 1 && colour > 0) done.Add($"{colour} colour images converted to grey (data.to_grey)");
        if (Channels == 3 && originals.Any(i => i.Channels == 1)) done.Add($"{originals.Count(i => i.Channels == 1)} grey images repeated to RGB");
        if (Channels == 1 && greyStoredAsRgb > 0) done.Add($"{greyStoredAsRgb} grey images stored as RGB read as grey");
        if (RandomFlip) done.Add("each mirrored left to right with probability ½ each step");
        return $"Images: {originals.Count} of {sizeText}, {(colour > 0 ? $"{colour} in colour" : "all grey")}; " +
               (done.Count == 0 ? "used as they are." : string.Join("; ", done) + ".");
    }

    RasterImage WithModelChannels(RasterImage image, string id)
    {
        if (image.Channels == Channels) return image;
        if (Channels is not (1 or 3))
            throw new InvalidDataException($"The model takes {Channels} input channels (model.in_channels) and images have 1 or 3: a " +
                                           $"{Channels}-channel UNet is a latent model, whose images reach it through a VAE.");
        if (Channels == 3) return image.ToRgb();
        if (IsGrey(image) || ToGrey) return image.ToGrey();
        throw new InvalidDataException(
            $"Image '{id}' is in colour but the model takes one channel (model.in_channels = 1). Train a colour model " +
            "(model.in_channels = 3 and model.out_channels = 3), or set data.to_grey = true to convert the images to grey.");
    }

    bool IsPaddedOrExact(RasterImage image) => image.Width == image.Height && image.Width <= Size;

    /// <summary>One channel, or three equal ones (a grey picture saved as RGB, which converts without loss).</summary>
    static bool IsGrey(RasterImage image)
    {
        if (image.Channels == 1) return true;
        var p = image.Pixels;
        for (int i = 0; i < p.Length; i += 3)
            if (p[i] != p[i + 1] || p[i] != p[i + 2]) return false;
        return true;
    }
}
