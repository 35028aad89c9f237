using Excise.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Excise.Imaging;

namespace Excise.Evaluation.Features;

/// <param name="ModelDirectory">DnnImageModels folder; null searches (see <see cref="ResNet18ModelFiles.Locate"/>).</param>
/// <param name="IntraOpThreads">ONNX Runtime intra-op threads; 0 picks min(cores, 4).</param>
public sealed record ResNet18Options(string? ModelDirectory = null, int IntraOpThreads = 0)
{
    internal int ResolvedIntraOpThreads => IntraOpThreads > 0 ? IntraOpThreads : Math.Clamp(Environment.ProcessorCount, 1, 4);
}

/// <summary>
/// ImageNet-trained ResNet18 (CNTK export shipped by ML.NET) as a 512-d feature extractor for FID/KID.
/// Each image is resized to 224×224 (bilinear, half-pixel centres), grey replicated to 3 channels, given as
/// 0–255 floats minus the package's ImageNet mean image, and the global-average-pooled 512 activations are
/// returned. The graph has a fixed batch of 1, so images run one at a time (45–125 ms each on 2 cores; see docs/metrics.md).
/// </summary>
/// <remarks>
/// Not InceptionV3: FIDs computed with these features are not comparable with published FIDs, only with each
/// other at equal sample counts. RGB images are fed in B, G, R order, the order of the package's mean image
/// (channel means 103.9, 116.8, 123.7 are ImageNet's B, G, R); for grey images the order does not matter.
/// </remarks>
public sealed class ResNet18Features : IImageFeatureExtractor, IDisposable
{
    public const int InputSide = 224;
    public const int FeatureDimension = 512;
    private const int Plane = InputSide * InputSide;

    private readonly InferenceSession network;
    private readonly string inputName;
    private readonly float[] meanOffset; // [3,224,224], added to 0–255 pixels: exactly what ResNetPreprocess.onnx does

    public string Id => $"resnet18-imagenet ({ResNet18ModelFiles.PackageId} {ResNet18ModelFiles.PackageVersion}, bilinear {InputSide}, avgpool {FeatureDimension})";
    public int Dimension => FeatureDimension;
    public ResNet18ModelFiles Files { get; }

    public ResNet18Features(ResNet18Options? options = null)
    {
        options ??= new ResNet18Options();
        if (options.IntraOpThreads < 0) throw new ArgumentOutOfRangeException(nameof(options), $"ResNet18 IntraOpThreads must be >= 0 (0 = automatic), got {options.IntraOpThreads}.");
        Files = ResNet18ModelFiles.Locate(options.ModelDirectory);
        using var sessionOptions = new SessionOptions
        {
            IntraOpNumThreads = options.ResolvedIntraOpThreads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        meanOffset = ReadMeanOffset(Files.PreprocessPath, sessionOptions);
        network = Open(Files.NetworkPath, sessionOptions);
        try
        {
            inputName = CheckNetworkShape(Files.NetworkPath);
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    public float[][] Extract(IReadOnlyList<RasterImage> images)
    {
        ArgumentNullException.ThrowIfNull(images);
        var features = new float[images.Count][];
        var input = new DenseTensor<float>(new[] { 1, 3, InputSide, InputSide });
        var inputs = new[] { NamedOnnxValue.CreateFromTensor(inputName, input) };
        for (int i = 0; i < images.Count; i++)
        {
            Fill(input.Buffer.Span, images[i] ?? throw new ArgumentException($"Image {i} is null.", nameof(images)));
            using var results = network.Run(inputs);
            var output = results[0].AsTensor<float>();
            if (output.Length != FeatureDimension)
                throw new InvalidDataException($"{Files.NetworkPath}: produced {output.Length} values for image {i}, expected {FeatureDimension}.");
            features[i] = output.ToArray();
        }
        return features;
    }

    private void Fill(Span<float> input, RasterImage image)
    {
        var resized = image.Width == InputSide && image.Height == InputSide ? image : image.ResizeTo(InputSide, InputSide);
        var pixels = resized.Pixels;
        for (int channel = 0; channel < 3; channel++)
        {
            // Grey feeds its one channel thrice; RGB is interleaved R, G, B and is fed as B, G, R.
            int source = resized.Channels == 1 ? 0 : 2 - channel;
            int stride = resized.Channels, offset = channel * Plane;
            for (int p = 0; p < Plane; p++)
                input[offset + p] = pixels[p * stride + source] + meanOffset[offset + p];
        }
    }

    /// <summary>
    /// The preprocessing graph is x ↦ x − mean image; its output for a zero input is the offset to add. The
    /// graph is then checked to be exactly that on a ramp, so a different package version cannot silently change
    /// the features.
    /// </summary>
    private static float[] ReadMeanOffset(string path, SessionOptions sessionOptions)
    {
        using var session = Open(path, sessionOptions);
        var (inputName, inputShape) = session.InputMetadata.Select(kv => (kv.Key, kv.Value.Dimensions)).Single();
        if (!inputShape.SequenceEqual(new[] { 1, 3, InputSide, InputSide }))
            throw new InvalidDataException($"{path}: input shape [{string.Join(",", inputShape)}], expected [1,3,{InputSide},{InputSide}].");
        float[] Run(Func<int, float> value)
        {
            var input = new DenseTensor<float>(new[] { 1, 3, InputSide, InputSide });
            for (int i = 0; i < input.Length; i++) input.Buffer.Span[i] = value(i);
            using var results = session.Run(new[] { NamedOnnxValue.CreateFromTensor(inputName, input) });
            return results[0].AsTensor<float>().ToArray();
        }
        var offset = Run(_ => 0f);
        if (offset.Length != 3 * Plane) throw new InvalidDataException($"{path}: output has {offset.Length} values, expected {3 * Plane}.");
        var ramp = Run(i => i % 256);
        for (int i = 0; i < ramp.Length; i++)
            if (Math.Abs(ramp[i] - (i % 256 + offset[i])) > 1e-3f)
                throw new InvalidDataException($"{path}: preprocessing is not a fixed offset (element {i}: {ramp[i]} for input {i % 256}, offset {offset[i]}).");
        return offset;
    }

    private string CheckNetworkShape(string path)
    {
        var (name, meta) = network.InputMetadata.Select(kv => (kv.Key, kv.Value)).Single();
        if (!meta.Dimensions.SequenceEqual(new[] { 1, 3, InputSide, InputSide }))
            throw new InvalidDataException($"{path}: input '{name}' has shape [{string.Join(",", meta.Dimensions)}], expected [1,3,{InputSide},{InputSide}].");
        var output = network.OutputMetadata.Single().Value.Dimensions;
        if (output.Aggregate(1L, (product, d) => product * d) != FeatureDimension)
            throw new InvalidDataException($"{path}: output shape [{string.Join(",", output)}] does not hold {FeatureDimension} features.");
        return name;
    }

    private static InferenceSession Open(string path, SessionOptions options)
    {
        try { return new InferenceSession(path, options); }
        catch (OnnxRuntimeException e) { throw new InvalidDataException($"{path}: ONNX Runtime cannot load the model: {e.Message}", e); }
    }

    public void Dispose() => network.Dispose();
}
