using Excise.Models;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Excise.Tests.Models;

public sealed class UNetSafetensorsTests : IDisposable
{
    private readonly string directory = Directory.CreateTempSubdirectory("excise-models-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    [Fact]
    public void Save_then_load_restores_every_weight_exactly()
    {
        using var scope = NewDisposeScope();
        var config = GoldenData.Config("mnist32");
        torch.manual_seed(1);
        var saved = new UNet2DConditionModel(config);
        var path = Path.Combine(directory, "nested", "unet.safetensors");
        saved.SaveSafetensors(path);

        Assert.Equal(GoldenData.HeaderShapes(GoldenData.WeightsPath("mnist32")).Keys.Order(), GoldenData.HeaderShapes(path).Keys.Order());
        torch.manual_seed(2);
        var loaded = new UNet2DConditionModel(config);
        loaded.LoadSafetensors(path);
        var expected = saved.state_dict();
        foreach (var (key, value) in loaded.state_dict()) Assert.True(GoldenData.Identical(value, expected[key]), $"{key} changed in the round trip");
    }

    [Fact]
    public void Missing_tensor_is_named_in_the_error()
    {
        var path = WriteGoldenVariant(weights => weights.Remove("mid_block.resnets.1.conv2.bias"));
        var model = new UNet2DConditionModel(GoldenData.Config("mnist32"));
        var error = Assert.Throws<InvalidDataException>(() => model.LoadSafetensors(path));
        Assert.Contains(path, error.Message);
        Assert.Contains("missing: mid_block.resnets.1.conv2.bias [64]", error.Message);

        model.LoadSafetensors(path, strict: false);  // non-strict tolerates the gap
    }

    [Fact]
    public void Wrong_shape_and_unexpected_tensors_are_named_and_nothing_is_loaded()
    {
        const string key = "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight";
        var path = WriteGoldenVariant(weights =>
        {
            weights[key] = zeros(32, 77);
            weights["text_model.extra.weight"] = zeros(3);
        });
        var model = new UNet2DConditionModel(GoldenData.Config("mnist32"));
        var before = model.state_dict()["conv_in.weight"].clone();

        var error = Assert.Throws<InvalidDataException>(() => model.LoadSafetensors(path));
        Assert.Contains($"shape mismatch: {key} is [32, 77] in the file, model needs [32, 384]", error.Message);
        Assert.Contains("unexpected: text_model.extra.weight", error.Message);
        Assert.True(GoldenData.Identical(model.state_dict()["conv_in.weight"], before), "a failed load must not change weights");

        error = Assert.Throws<InvalidDataException>(() => model.LoadSafetensors(path, strict: false));
        Assert.Contains(key, error.Message);
    }

    [Fact]
    public void Unreadable_file_gives_a_clear_error()
    {
        var path = Path.Combine(directory, "garbage.safetensors");
        File.WriteAllBytes(path, [1, 2, 3]);
        var model = new UNet2DConditionModel(GoldenData.Config("mnist32"));
        Assert.Contains(path, Assert.Throws<InvalidDataException>(() => model.LoadSafetensors(path)).Message);
        Assert.Throws<FileNotFoundException>(() => model.LoadSafetensors(Path.Combine(directory, "absent.safetensors")));
    }

    private string WriteGoldenVariant(Action<Dictionary<string, Tensor>> edit)
    {
        var weights = Safetensors.LoadStateDict(GoldenData.WeightsPath("mnist32"));
        edit(weights);
        var path = Path.Combine(directory, "variant.safetensors");
        Safetensors.SaveStateDict(path, weights);
        return path;
    }
}
