using Excise.Serialization;
using static TorchSharp.torch;

namespace Excise.Tests.Serialization;

public class ModuleWeightsTests
{
    static nn.Module<Tensor, Tensor> SmallModel() => nn.Sequential(("first", nn.Linear(3, 2)), ("second", nn.Linear(2, 1)));

    static Dictionary<string, Tensor> WeightsOf(nn.Module module) =>
        module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

    [Fact]
    public void Missing_tensor_is_reported_by_name_and_nothing_is_copied()
    {
        using var dir = new TempDir();
        var path = dir.File("partial.safetensors");
        var stored = WeightsOf(SmallModel());
        stored.Remove("second.bias");
        foreach (var t in stored.Values) t.fill_(5);
        SafetensorsFile.Save(path, stored);

        var model = SmallModel();
        var before = WeightsOf(model);
        var e = Assert.Throws<InvalidDataException>(() => ModuleWeights.Load(model, path));
        Assert.Contains(path, e.Message);
        Assert.Contains("missing: second.bias [1]", e.Message);
        foreach (var (name, value) in model.state_dict())
            Assert.True(value.eq(before[name]).all().ToBoolean(), $"{name} changed although the load was refused");
    }

    [Fact]
    public void Wrong_shape_is_reported_with_both_shapes()
    {
        using var dir = new TempDir();
        var path = dir.File("shape.safetensors");
        var stored = WeightsOf(SmallModel());
        stored["first.weight"] = zeros(2, 4);
        SafetensorsFile.Save(path, stored);
        var e = Assert.Throws<InvalidDataException>(() => ModuleWeights.Load(SmallModel(), path));
        Assert.Contains("shape mismatch: first.weight is [2, 4] in the file, model needs [2, 3]", e.Message);
    }

    [Fact]
    public void Unexpected_tensor_is_refused_when_strict_and_ignored_otherwise()
    {
        using var dir = new TempDir();
        var path = dir.File("extra.safetensors");
        var stored = WeightsOf(SmallModel());
        stored["third.weight"] = ones(1);
        SafetensorsFile.Save(path, stored);
        var e = Assert.Throws<InvalidDataException>(() => ModuleWeights.Load(SmallModel(), path));
        Assert.Contains("unexpected: third.weight", e.Message);

        var model = SmallModel();
        ModuleWeights.Load(model, path, strict: false);
        Assert.True(model.state_dict()["first.weight"].eq(stored["first.weight"]).all().ToBoolean());
    }

    [Fact]
    public void Half_precision_file_loads_into_a_float_model()
    {
        using var dir = new TempDir();
        var path = dir.File("half.safetensors");
        var stored = WeightsOf(SmallModel()).ToDictionary(kv => kv.Key, kv => kv.Value.to(ScalarType.Float16));
        SafetensorsFile.Save(path, stored);
        var model = SmallModel();
        ModuleWeights.Load(model, path);
        Assert.Equal(ScalarType.Float32, model.state_dict()["second.weight"].dtype);
        Assert.True(model.state_dict()["second.weight"].eq(stored["second.weight"].to(ScalarType.Float32)).all().ToBoolean());
    }

    [Fact]
    public void A_pinned_file_loads_only_with_the_bytes_it_was_pinned_with()
    {
        using var dir = new TempDir();
        var path = dir.File("model.safetensors");
        var stored = WeightsOf(SmallModel());
        SafetensorsFile.Save(path, stored);
        var digest = Digest.Pin(path);
        // sha256sum's own format, so `sha256sum -c model.safetensors.sha256` checks the shipped file too.
        Assert.Equal($"{digest}  model.safetensors\n", File.ReadAllText(path + ".sha256"));
        var model = SmallModel();
        ModuleWeights.Load(model, path);
        Assert.True(model.state_dict()["first.weight"].eq(stored["first.weight"]).all().ToBoolean());

        // One value changed in the tensor data: still a valid safetensors file, so only the pin can tell.
        var bytes = File.ReadAllBytes(path);
        bytes[^1] ^= 0x40;
        File.WriteAllBytes(path, bytes);
        var before = WeightsOf(model);
        var e = Assert.Throws<InvalidDataException>(() => ModuleWeights.Load(model, path));
        Assert.Contains(path, e.Message);
        Assert.Contains(digest, e.Message);
        Assert.True(model.state_dict()["second.bias"].eq(before["second.bias"]).all().ToBoolean());

        // Unpinned files load as before.
        File.Delete(path + ".sha256");
        ModuleWeights.Load(SmallModel(), path);
    }
}
