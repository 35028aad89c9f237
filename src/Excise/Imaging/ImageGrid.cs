using SkiaSharp;

namespace Excise.Imaging;

/// <summary>Tiles images into one contact sheet, for eyeballing datasets and samples.</summary>
public static class ImageGrid
{
    /// <param name="labels">Optional text drawn under each cell (needs a system font; skipped silently if none).</param>
    /// <param name="scale">Nearest-neighbour enlargement applied to each cell before tiling.</param>
    public static RasterImage Compose(IReadOnlyList<RasterImage> images, int columns, int padding = 2,
        IReadOnlyList<string>? labels = null, int scale = 1, byte background = 64)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.Count == 0) throw new ArgumentException("ImageGrid.Compose needs at least one image.", nameof(images));
        if (columns < 1) throw new ArgumentOutOfRangeException(nameof(columns), $"columns must be >= 1, got {columns}.");
        if (padding < 0) throw new ArgumentOutOfRangeException(nameof(padding), $"padding must be >= 0, got {padding}.");
        if (labels is not null && labels.Count != images.Count)
            throw new ArgumentException($"labels has {labels.Count} entries for {images.Count} images.", nameof(labels));

        int channels = images.Any(image => image.Channels == 3) ? 3 : 1;
        var cells = images.Select(image => image.ToChannels(channels).Upscale(scale)).ToList();
        int cellWidth = cells.Max(c => c.Width), cellHeight = cells.Max(c => c.Height);
        int labelHeight = labels is null ? 0 : 12;
        int rows = (cells.Count + columns - 1) / columns, usedColumns = Math.Min(columns, cells.Count);
        int width = usedColumns * cellWidth + (usedColumns + 1) * padding;
        int height = rows * (cellHeight + labelHeight) + (rows + 1) * padding;

        var grid = RasterImage.Blank(width, height, channels, background);
        for (int i = 0; i < cells.Count; i++)
        {
            int left = padding + (i % columns) * (cellWidth + padding);
            int top = padding + (i / columns) * (cellHeight + labelHeight + padding);
            Blit(cells[i], grid, left, top);
        }
        return labels is null ? grid : DrawLabels(grid, labels, columns, padding, cellWidth, cellHeight, labelHeight);
    }

    public static void Save(IReadOnlyList<RasterImage> images, int columns, string path, int padding = 2,
        IReadOnlyList<string>? labels = null, int scale = 1) =>
        PngIO.Save(Compose(images, columns, padding, labels, scale), path);

    private static void Blit(RasterImage source, RasterImage target, int left, int top)
    {
        int rowBytes = source.Width * source.Channels;
        for (int y = 0; y < source.Height; y++)
            Array.Copy(source.Pixels, y * rowBytes, target.Pixels, ((top + y) * target.Width + left) * target.Channels, rowBytes);
    }

    private static RasterImage DrawLabels(RasterImage grid, IReadOnlyList<string> labels, int columns, int padding,
        int cellWidth, int cellHeight, int labelHeight)
    {
        using var bitmap = PngIO.ToBitmap(grid.ToRgb());
        using var canvas = new SKCanvas(bitmap);
        using var font = new SKFont(SKTypeface.Default, 10);
        using var paint = new SKPaint { Color = SKColors.White, IsAntialias = true };
        for (int i = 0; i < labels.Count; i++)
        {
            float left = padding + (i % columns) * (cellWidth + padding);
            float baseline = padding + (i / columns) * (cellHeight + labelHeight + padding) + cellHeight + labelHeight - 2;
            canvas.Save();
            canvas.ClipRect(new SKRect(left, baseline - labelHeight, left + cellWidth, baseline + 2));
            canvas.DrawText(labels[i], left, baseline, SKTextAlign.Left, font, paint);
            canvas.Restore();
        }
        canvas.Flush();
        var labelled = PngIO.FromBitmap(bitmap);
        return grid.Channels == 1 ? labelled.ToGrey() : labelled;
    }
}
