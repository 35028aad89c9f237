using Excise.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Tests.Models;

/// <summary>Module initialisation draws from libtorch's process-wide generator, so a test that seeds it
/// must not run alongside tests that draw random numbers.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class GlobalTorchRngCollection
{
    public const string Name = "global torch RNG";
}

[Collection(GlobalTorchRngCollection.Name)]
public sealed class UNetSeedTests
{
    [Fact]
    public void Same_seed_gives_identical_weights_and_norms_start_at_identity()
    {
        using var scope = NewDisposeScope();
        var config = GoldenData.Config("mnist32");
        torch.manual_seed(7);
        var first = new UNet2DConditionModel(config).state_dict();
        torch.manual_seed(7);
        var second = new UNet2DConditionModel(config).state_dict();
        torch.manual_seed(8);
        var other = new UNet2DConditionModel(config).state_dict();

        foreach (var (key, value) in first) Assert.True(GoldenData.Identical(value, second[key]), $"{key} differs under the same seed");
        Assert.False(GoldenData.Identical(first["conv_in.weight"], other["conv_in.weight"]));
        foreach (var key in first.Keys.Where(k => k.Contains("norm")))
        {
            var expected = key.EndsWith(".weight") ? 1f : 0f;
            Assert.True(first[key].eq(expected).all().ToBoolean(), $"{key} is not initialised to {expected}");
        }
    }
}
