using System.Collections;
using Excise.Serialization;
using static TorchSharp.torch;

namespace Excise.Tests.Serialization;

public class PickleConversionTests
{
    static Hashtable StateDict() => new()
    {
        ["conv.weight"] = arange(24, dtype: ScalarType.Float32).reshape(2, 3, 2, 2),
        ["conv.bias"] = tensor(new[] { 0.5f, -1.5f }),
    };

    [Fact]
    public void A_pickle_is_refused_without_the_opt_in_and_nothing_is_written()
    {
        using var dir = new TempDir();
        TorchSharp.PyBridge.PyTorchPickler.PickleStateDict(dir.File("model.pth"), StateDict());
        var error = Assert.Throws<InvalidOperationException>(() => PickleConversion.ToSafetensors(dir.File("model.pth"), dir.File("model.safetensors"), allowPickle: false));
        Assert.Contains("--allow-pickle", error.Message);
        Assert.Contains("carry code", error.Message);
        Assert.False(File.Exists(dir.File("model.safetensors")));
        // And the safetensors reader, asked to read the pickle directly, points at the conversion.
        Assert.Contains("excise convert", Assert.Throws<InvalidDataException>(() => SafetensorsFile.Load(dir.File("model.pth"))).Message);
    }

    [Fact]
    public void With_the_opt_in_the_weights_arrive_in_safetensors_unchanged()
    {
        using var dir = new TempDir();
        TorchSharp.PyBridge.PyTorchPickler.PickleStateDict(dir.File("flat.pth"), StateDict());
        var flat = PickleConversion.ToSafetensors(dir.File("flat.pth"), dir.File("flat.safetensors"), allowPickle: true);
        Assert.Equal((2, 26L, (string?)null), (flat.Tensors, flat.Values, flat.NestedUnder));
        using (var loaded = SafetensorsFile.Load(dir.File("flat.safetensors")))
        {
            var expected = StateDict();
            Assert.True(loaded.Tensors["conv.weight"].eq((Tensor)expected["conv.weight"]!).all().ToBoolean());
            Assert.True(loaded.Tensors["conv.bias"].eq((Tensor)expected["conv.bias"]!).all().ToBoolean());
        }
    }

    [Fact]
    public void A_file_that_is_not_a_pickle_is_a_clear_error()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("notes.pth"), "these are not weights");
        Assert.Throws<InvalidDataException>(() => PickleConversion.ToSafetensors(dir.File("notes.pth"), dir.File("x.safetensors"), allowPickle: true));
        Assert.False(File.Exists(dir.File("x.safetensors")));
    }
}
