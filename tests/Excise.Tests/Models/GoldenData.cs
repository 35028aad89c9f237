using Excise.Models;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Excise.Tests.Models;

/// <summary>The diffusers reference data in tests/golden (see its README).</summary>
internal static class GoldenData
{
    public static string Directory { get; } = Locate();

    public static string ConfigPath(string name) => Path.Combine(Directory, $"{name}.config.json");
    public static string WeightsPath(string name) => Path.Combine(Directory, $"{name}.weights.safetensors");
    public static string IoPath(string name) => Path.Combine(Directory, $"{name}.io.safetensors");

    public static UNetConfig Config(string name) => UNetConfig.FromDiffusersJson(File.ReadAllText(ConfigPath(name)));

    public static UNet2DConditionModel LoadedModel(string name)
    {
        var model = new UNet2DConditionModel(Config(name));
        model.LoadSafetensors(WeightsPath(name));
        model.eval();
        return model;
    }

    public static Dictionary<string, Tensor> Io(string name) => Safetensors.LoadStateDict(IoPath(name));

    /// <summary>The golden README's rule: max|Δ| ≤ <paramref name="relative"/> × max|reference|, with the measured Δ written to the test's output.</summary>
    public static void AssertWithin(Xunit.Abstractions.ITestOutputHelper output, string what, Tensor actual, Tensor expected, double relative)
    {
        Assert.Equal(expected.shape, actual.shape);
        var delta = MaxAbs(actual - expected);
        var tolerance = relative * MaxAbs(expected);
        output.WriteLine($"{what}: max|Δ| = {delta:E2} (tolerance {tolerance:E2})");
        Assert.True(delta <= tolerance, $"{what}: max|Δ| {delta:E2} > {tolerance:E2}");
    }

    public static double MaxAbs(Tensor t) => t.abs().max().ToDouble();

    /// <summary>Same shape and bit-identical values.</summary>
    public static bool Identical(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().ToBoolean();

    /// <summary>Name → shape from the safetensors JSON header, read directly so the test does not trust the loader it checks.</summary>
    public static Dictionary<string, long[]> HeaderShapes(string path)
    {
        using var stream = File.OpenRead(path);
        var lengthBytes = new byte[8];
        stream.ReadExactly(lengthBytes);
        var header = new byte[BitConverter.ToUInt64(lengthBytes)];
        stream.ReadExactly(header);
        using var json = System.Text.Json.JsonDocument.Parse(header);
        return json.RootElement.EnumerateObject()
            .Where(p => p.Name != "__metadata__")
            .ToDictionary(p => p.Name, p => p.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray());
    }

    private static string Locate()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Excise.slnx")))
                return Path.Combine(dir.FullName, "tests", "golden");
        throw new DirectoryNotFoundException($"No Excise.slnx above {AppContext.BaseDirectory}; cannot find tests/golden.");
    }
}
