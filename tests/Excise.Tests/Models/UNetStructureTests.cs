using Excise.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Tests.Models;

public sealed class UNetStructureTests
{
    [Theory]
    [InlineData("mnist32", 903_873, 8)]
    [InlineData("sdtiny", 3_222_692, 32)]
    public void Parameter_names_and_shapes_equal_diffusers_state_dict(string name, long parameterCount, int keyValueWeights)
    {
        using var scope = NewDisposeScope();
        var model = new UNet2DConditionModel(GoldenData.Config(name));
        var expected = GoldenData.HeaderShapes(GoldenData.WeightsPath(name));
        var actual = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);

        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (key, shape) in expected) Assert.True(shape.SequenceEqual(actual[key]), $"{key}: [{string.Join(",", actual[key])}] vs [{string.Join(",", shape)}]");
        Assert.Empty(model.named_buffers());
        Assert.Equal(parameterCount, model.ParameterCount);

        var crossAttention = model.CrossAttentionKeyValueWeights().ToList();
        Assert.Equal(keyValueWeights, crossAttention.Count);
        Assert.All(crossAttention, w => Assert.Matches(@"\.attn2\.to_[kv]\.weight$", w.Name));
        Assert.All(crossAttention, w => Assert.Equal(model.Config.CrossAttentionDim, w.Param.shape[1]));
    }

    [Fact]
    public void Output_has_input_shape_for_a_batch_with_a_shared_timestep()
    {
        using var scope = NewDisposeScope();
        var model = new UNet2DConditionModel(GoldenData.Config("mnist32"));
        var sample = randn(3, 1, 32, 32);
        using var _ = no_grad();
        var output = model.forward(sample, tensor(500f), randn(3, 5, 384));
        Assert.Equal(sample.shape, output.shape);
        Assert.False(output.isnan().any().ToBoolean());
    }

    [Fact]
    public void Sample_sides_not_divisible_by_the_downsampling_still_round_trip()
    {
        // 12 → 6 → 3 → 2 on the way down; the up path must resize 2 → 3, as diffusers' upsample_size does.
        using var scope = NewDisposeScope();
        var model = new UNet2DConditionModel(GoldenData.Config("sdtiny"));
        var sample = randn(2, 4, 12, 12);
        using var _ = no_grad();
        Assert.Equal(sample.shape, model.forward(sample, tensor(new[] { 1f, 999f }), randn(2, 3, 32)).shape);
    }

    [Fact]
    public void Masked_text_tokens_are_ignored_and_unmasked_ones_are_not()
    {
        using var scope = NewDisposeScope();
        var model = GoldenData.LoadedModel("mnist32");
        var sample = randn(2, 1, 32, 32);
        var timesteps = tensor(new[] { 10f, 700f });
        var states = randn(2, 6, 384);
        var changed = states.clone();
        changed[.., 4..] = randn(2, 2, 384) * 5;  // rewrite the last two tokens
        var paddedMask = tensor(new float[,] { { 1, 1, 1, 1, 0, 0 }, { 1, 1, 1, 1, 0, 0 } });
        var fullMask = ones(2, 6);

        using var _ = no_grad();
        var padded = (model.forward(sample, timesteps, states, paddedMask) - model.forward(sample, timesteps, changed, paddedMask)).abs().max().ToSingle();
        var attended = (model.forward(sample, timesteps, states, fullMask) - model.forward(sample, timesteps, changed, fullMask)).abs().max().ToSingle();
        var noMask = (model.forward(sample, timesteps, states, fullMask) - model.forward(sample, timesteps, states)).abs().max().ToSingle();

        Assert.True(padded < 1e-5, $"padded tokens moved the output by {padded}");
        Assert.True(attended > 1e-2, $"unmasked tokens moved the output only by {attended}");
        Assert.True(noMask < 1e-6, $"an all-ones mask differs from no mask by {noMask}");
    }

    [Fact]
    public void Linear_projection_variant_computes_the_same_function_as_1x1_convolutions()
    {
        // SD2-style use_linear_projection swaps proj_in/proj_out for Linear layers applied to tokens;
        // with the conv kernels copied in, the outputs must agree.
        using var scope = NewDisposeScope();
        var convModel = GoldenData.LoadedModel("mnist32");
        var linearModel = new UNet2DConditionModel(convModel.Config with { UseLinearProjection = true });
        var convWeights = convModel.state_dict();
        var linearWeights = linearModel.state_dict();
        Assert.Equal(new long[] { 32, 32 }, linearWeights["down_blocks.0.attentions.0.proj_in.weight"].shape);
        using (no_grad())
            foreach (var (key, target) in linearWeights) target.copy_(convWeights[key].reshape(target.shape));

        var sample = randn(2, 1, 32, 32);
        var timesteps = tensor(new[] { 3f, 300f });
        var states = randn(2, 4, 384);
        using var _ = no_grad();
        var delta = (convModel.forward(sample, timesteps, states) - linearModel.forward(sample, timesteps, states)).abs().max().ToSingle();
        Assert.True(delta < 1e-5, $"linear projection differs by {delta}");
    }
}
