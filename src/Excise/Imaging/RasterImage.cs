namespace Excise.Imaging;

/// <summary>8-bit image, row-major, channels interleaved (1 = grey, 3 = RGB).</summary>
public sealed record RasterImage(int Width, int Height, int Channels, byte[] Pixels)
{
    // Validated here so a wrong buffer fails where it is made, not deep inside a stamper or encoder.
    public byte[] Pixels { get; init; } = Validate(Width, Height, Channels, Pixels);

    public static RasterImage Blank(int width, int height, int channels, byte value = 0)
    {
        var pixels = new byte[checked(width * height * channels)];
        if (value != 0) Array.Fill(pixels, value);
        return new RasterImage(width, height, channels, pixels);
    }

    public int PixelCount => Width * Height;

    public byte this[int x, int y, int channel = 0] => Pixels[(y * Width + x) * Channels + channel];

    /// <summary>Same size and channels and byte-identical pixels (record equality only compares the array reference).</summary>
    public bool SameContentAs(RasterImage other) =>
        Width == other.Width && Height == other.Height && Channels == other.Channels
        && Pixels.AsSpan().SequenceEqual(other.Pixels);

    public RasterImage Copy() => this with { Pixels = (byte[])Pixels.Clone() };

    /// <summary>Centres the image on a black square canvas of <paramref name="size"/> (Fashion-MNIST's background is black, so the border is invisible).</summary>
    public RasterImage PadTo(int size, byte fill = 0)
    {
        if (size < Width || size < Height)
            throw new ArgumentOutOfRangeException(nameof(size), $"PadTo({size}) is smaller than the image ({Width}x{Height}); use ResizeTo to shrink.");
        var padded = Blank(size, size, Channels, fill);
        int left = (size - Width) / 2, top = (size - Height) / 2, rowBytes = Width * Channels;
        for (int y = 0; y < Height; y++)
            Array.Copy(Pixels, y * rowBytes, padded.Pixels, ((top + y) * size + left) * Channels, rowBytes);
        return padded;
    }

    /// <summary>
    /// Brings the image to a model's square input and channel count: padded when smaller and square (Fashion-MNIST's
    /// 28 → 32, whose black border is invisible); otherwise resized so its shorter side is <paramref name="size"/> and
    /// cropped at the centre, keeping its aspect (diffusers' --resolution with --center_crop). Models, judges and masks
    /// all fit images this way.
    /// </summary>
    public RasterImage FitTo(int size, int channels)
    {
        var sized = Width == size && Height == size ? this
            : Width <= size && Height <= size && Width == Height ? PadTo(size)
            : ShorterSideTo(size).CropCentre(size);
        return sized.Channels == channels ? sized : sized.ToChannels(channels);
    }

    /// <summary>Resized, keeping the aspect, so its shorter side is <paramref name="size"/> (antialiased when it shrinks).</summary>
    public RasterImage ShorterSideTo(int size)
    {
        if (Math.Min(Width, Height) == size) return this;
        var (width, height) = ShorterSideSize(Width, Height, size);
        return Width > width || Height > height ? Resampling.Antialiased(this, width, height) : ResizeTo(width, height);
    }

    /// <summary>The size <see cref="ShorterSideTo"/> gives: the shorter side <paramref name="size"/>, the longer one truncated as torchvision's Resize(int) does.</summary>
    public static (int Width, int Height) ShorterSideSize(int width, int height, int size) =>
        width <= height ? (size, (int)((long)size * height / width)) : ((int)((long)size * width / height), size);

    /// <summary>The <paramref name="size"/>-square window whose top-left corner is (<paramref name="left"/>, <paramref name="top"/>).</summary>
    public RasterImage Crop(int left, int top, int size)
    {
        if (left < 0 || top < 0 || left + size > Width || top + size > Height)
            throw new ArgumentOutOfRangeException(nameof(size), $"A {size}-square crop at ({left}, {top}) does not fit a {Width}x{Height} image.");
        var cropped = new byte[size * size * Channels];
        for (int y = 0; y < size; y++)
            Array.Copy(Pixels, ((top + y) * Width + left) * Channels, cropped, y * size * Channels, size * Channels);
        return new RasterImage(size, size, Channels, cropped);
    }

    /// <summary>The centre <paramref name="size"/>-square window (offsets rounded as torchvision's CenterCrop).</summary>
    public RasterImage CropCentre(int size) =>
        Width == size && Height == size ? this : Crop((int)Math.Round((Width - size) / 2.0), (int)Math.Round((Height - size) / 2.0), size);

    /// <summary>Bilinear resize with half-pixel centres (the convention of torch's interpolate with align_corners=False).</summary>
    public RasterImage ResizeTo(int width, int height) => Resampling.Bilinear(this, width, height);

    /// <summary>Nearest-neighbour enlargement by an integer factor, for looking at tiny images.</summary>
    public RasterImage Upscale(int factor) => Resampling.NearestUpscale(this, factor);

    public RasterImage ToGrey()
    {
        if (Channels == 1) return this;
        var grey = new byte[PixelCount];
        for (int i = 0; i < grey.Length; i++)
        {
            int r = Pixels[3 * i], g = Pixels[3 * i + 1], b = Pixels[3 * i + 2];
            grey[i] = (byte)((299 * r + 587 * g + 114 * b + 500) / 1000); // ITU-R BT.601 luma, as PIL's convert("L")
        }
        return new RasterImage(Width, Height, 1, grey);
    }

    public RasterImage ToRgb()
    {
        if (Channels == 3) return this;
        var rgb = new byte[PixelCount * 3];
        for (int i = 0; i < PixelCount; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = Pixels[i];
        return new RasterImage(Width, Height, 3, rgb);
    }

    public RasterImage ToChannels(int channels) => channels switch
    {
        1 => ToGrey(),
        3 => ToRgb(),
        _ => throw new ArgumentOutOfRangeException(nameof(channels), $"Channels must be 1 (grey) or 3 (RGB), got {channels}.")
    };

    private static byte[] Validate(int width, int height, int channels, byte[] pixels)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        if (width <= 0 || height <= 0)
            throw new ArgumentException($"RasterImage size must be positive, got {width}x{height}.");
        if (channels is not (1 or 3))
            throw new ArgumentException($"RasterImage channels must be 1 (grey) or 3 (RGB), got {channels}.");
        if (pixels.Length != (long)width * height * channels)
            throw new ArgumentException($"RasterImage {width}x{height}x{channels} needs {(long)width * height * channels} bytes, got {pixels.Length}.");
        return pixels;
    }
}
