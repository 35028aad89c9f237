using Excise.Data;
using Excise.Imaging;

namespace Excise.Evaluation.Features;

/// <summary>
/// Raw pixels scaled to [0, 1] as a feature vector (row-major, channels interleaved), for pixel-space
/// nearest-neighbour search. All images must have the size given at construction, so distances are comparable.
/// </summary>
public sealed class PixelFeatures(int width, int height, int channels = 1) : IImageFeatureExtractor
{
    public string Id => $"pixels [0,1] {width}x{height}x{channels}";
    public int Dimension => width * height * channels;

    public float[][] Extract(IReadOnlyList<RasterImage> images)
    {
        ArgumentNullException.ThrowIfNull(images);
        var features = new float[images.Count][];
        for (int i = 0; i < images.Count; i++)
        {
            var image = images[i];
            if (image.Width != width || image.Height != height || image.Channels != channels)
                throw new ArgumentException(
                    $"Image {i} is {image.Width}x{image.Height}x{image.Channels}, pixel features expect {width}x{height}x{channels} "
                    + "(pad or resize both generated and training images to one size first).", nameof(images));
            var row = new float[Dimension];
            for (int j = 0; j < row.Length; j++) row[j] = image.Pixels[j] / 255f;
            features[i] = row;
        }
        return features;
    }
}
