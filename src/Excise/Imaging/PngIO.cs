using Excise.Serialization;
using System.Runtime.InteropServices;
using SkiaSharp;

namespace Excise.Imaging;

/// <summary>PNG encode/decode of <see cref="RasterImage"/> through SkiaSharp. Grey images stay single-channel PNGs.</summary>
public static class PngIO
{
    private static ReadOnlySpan<byte> Signature => [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>
    /// Largest image decoded, 8192×8192 pixels: far above any training image or logo, and it bounds what a forged header
    /// can make the decoder allocate (SkiaSharp otherwise fails with a bare Exception once the allocation is refused).
    /// </summary>
    public const long MaxPixels = 8192L * 8192;

    /// <summary>Largest image file read: an 8192×8192 RGBA PNG stored without compression is about 270 MB.</summary>
    public const long MaxFileBytes = 512L << 20;

    public static bool HasPngSignature(ReadOnlySpan<byte> bytes) => bytes.Length >= 8 && bytes[..8].SequenceEqual(Signature);

    public static void Save(RasterImage image, string path)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(directory)) Directory.CreateDirectory(directory);
        File.WriteAllBytes(path, Encode(image));
    }

    public static byte[] Encode(RasterImage image)
    {
        using var bitmap = ToBitmap(image);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100)
            ?? throw new InvalidOperationException($"SkiaSharp could not encode a {image.Width}x{image.Height}x{image.Channels} image as PNG.");
        return data.ToArray();
    }

    /// <summary>Loads a PNG (or any format Skia decodes). Greyscale files give 1 channel, everything else 3;
    /// pass <paramref name="channels"/> to force one. Alpha is dropped (composited over black).</summary>
    public static RasterImage Load(string path, int? channels = null)
    {
        return Decode(BoundedFile.ReadAllBytes(path, MaxFileBytes, "image file"), path, channels);
    }

    public static RasterImage Decode(byte[] encoded, string sourceName, int? channels = null)
    {
        // Colour is decoded premultiplied: an image's transparent pixels carry no colour of their own.
        using var bitmap = DecodeBitmap(encoded, sourceName, SKAlphaType.Premul);
        var image = FromBitmap(bitmap);
        return channels is { } wanted ? image.ToChannels(wanted) : image;
    }

    /// <summary>Raw RGBA/grey view for callers that need alpha (logo masks). Returns (width, height, channelsInBuffer, bytes) with 1 or 4 channels.</summary>
    internal static (int Width, int Height, int Channels, byte[] Bytes) DecodeWithAlpha(byte[] encoded, string sourceName)
    {
        // Unpremultiplied: the alpha channel is read as it is stored.
        using var bitmap = DecodeBitmap(encoded, sourceName, SKAlphaType.Unpremul);
        int channels = bitmap.ColorType == SKColorType.Gray8 ? 1 : 4;
        return (bitmap.Width, bitmap.Height, channels, CopyTight(bitmap, channels));
    }

    /// <summary>Grey images as one channel, anything else as RGBA with <paramref name="colourAlpha"/>; size-checked before any pixel is decoded.</summary>
    static SKBitmap DecodeBitmap(byte[] encoded, string sourceName, SKAlphaType colourAlpha)
    {
        using var data = SKData.CreateCopy(encoded);
        using var codec = SKCodec.Create(data)
            ?? throw new InvalidDataException($"{sourceName}: not a decodable image ({encoded.Length} bytes; PNG signature {(HasPngSignature(encoded) ? "present" : "absent")}).");
        var info = codec.Info;
        RequireDecodableSize(info, sourceName);
        bool isGrey = info.ColorType == SKColorType.Gray8;
        var decodeInfo = new SKImageInfo(info.Width, info.Height, isGrey ? SKColorType.Gray8 : SKColorType.Rgba8888,
            isGrey ? SKAlphaType.Opaque : colourAlpha);
        var bitmap = new SKBitmap(decodeInfo);
        var result = codec.GetPixels(decodeInfo, bitmap.GetPixels());
        if (result == SKCodecResult.Success) return bitmap;
        bitmap.Dispose();
        throw new InvalidDataException($"{sourceName}: image decoding failed ({result}).");
    }

    static void RequireDecodableSize(SKImageInfo info, string sourceName)
    {
        if (info.Width <= 0 || info.Height <= 0 || (long)info.Width * info.Height > MaxPixels)
            throw new InvalidDataException($"{sourceName}: the image declares {info.Width}x{info.Height} pixels; Excise decodes at most {MaxPixels:N0} pixels (8192x8192).");
    }

    internal static SKBitmap ToBitmap(RasterImage image)
    {
        if (image.Channels == 1)
        {
            var grey = new SKBitmap(new SKImageInfo(image.Width, image.Height, SKColorType.Gray8, SKAlphaType.Opaque));
            WriteTight(grey, image.Pixels, image.Width);
            return grey;
        }
        var rgba = new byte[image.PixelCount * 4];
        for (int i = 0; i < image.PixelCount; i++)
        {
            rgba[4 * i] = image.Pixels[3 * i];
            rgba[4 * i + 1] = image.Pixels[3 * i + 1];
            rgba[4 * i + 2] = image.Pixels[3 * i + 2];
            rgba[4 * i + 3] = 255;
        }
        var colour = new SKBitmap(new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        WriteTight(colour, rgba, image.Width * 4);
        return colour;
    }

    internal static RasterImage FromBitmap(SKBitmap bitmap)
    {
        if (bitmap.ColorType is SKColorType.Gray8 or SKColorType.Alpha8)
            return new RasterImage(bitmap.Width, bitmap.Height, 1, CopyTight(bitmap, 1));
        if (bitmap.ColorType != SKColorType.Rgba8888)
            throw new ArgumentException($"Unsupported bitmap colour type {bitmap.ColorType}.");
        var rgba = CopyTight(bitmap, 4);
        int count = bitmap.Width * bitmap.Height;
        var rgb = new byte[count * 3];
        // Premultiplied RGBA is already "composited over black", which is what we want for transparent PNGs.
        for (int i = 0; i < count; i++)
        {
            rgb[3 * i] = rgba[4 * i];
            rgb[3 * i + 1] = rgba[4 * i + 1];
            rgb[3 * i + 2] = rgba[4 * i + 2];
        }
        return new RasterImage(bitmap.Width, bitmap.Height, 3, rgb);
    }

    internal static byte[] CopyTight(SKBitmap bitmap, int bytesPerPixel)
    {
        int rowBytes = bitmap.Width * bytesPerPixel;
        var tight = new byte[rowBytes * bitmap.Height];
        var origin = bitmap.GetPixels();
        for (int y = 0; y < bitmap.Height; y++)
            Marshal.Copy(origin + y * bitmap.RowBytes, tight, y * rowBytes, rowBytes);
        return tight;
    }

    private static void WriteTight(SKBitmap bitmap, byte[] tight, int rowBytes)
    {
        var origin = bitmap.GetPixels();
        for (int y = 0; y < bitmap.Height; y++)
            Marshal.Copy(tight, y * rowBytes, origin + y * bitmap.RowBytes, rowBytes);
    }
}
