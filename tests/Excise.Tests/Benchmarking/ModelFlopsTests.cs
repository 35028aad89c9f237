using Excise.Benchmarking;
using Excise.Models;
using Excise.Tests.Models;
using Excise.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Tests.Benchmarking;

public class ModelFlopsTests
{
    /// <summary>Counts what every Conv2d and Linear really computes in a forward, by hooking them, per top-level block.</summary>
    static Dictionary<string, double> HookedConvAndLinearFlops(UNet2DConditionModel model, SyntheticBatch batch)
    {
        var flops = new Dictionary<string, double>();
        foreach (var (name, module) in model.named_modules())
        {
            if (module is not (TorchSharp.Modules.Conv2d or TorchSharp.Modules.Linear)) continue;
            var parts = name.Split('.');
            var block = parts[0] is "down_blocks" or "up_blocks" ? $"{parts[0]}.{parts[1]}" : parts[0];
            var weight = module.named_parameters().First(p => p.name == "weight").parameter;
            double perOutput = 2.0 * weight.numel() / weight.shape[0];
            ((nn.Module<Tensor, Tensor>)module).register_forward_hook((_, _, output) =>
            {
                flops[block] = flops.GetValueOrDefault(block) + perOutput * output.numel();
                return output;
            });
        }
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        model.forward(batch.Sample, batch.Timesteps, batch.TextStates, batch.TextMask);
        return flops;
    }

    [Theory]
    [InlineData("golden:mnist32", 3, 7)]
    [InlineData("golden:sdtiny", 2, 5)]
    [InlineData("base", 2, 32)]
    public void Convolution_and_linear_flops_match_what_the_model_computes_block_by_block(string source, int batchSize, int tokens)
    {
        var config = source.StartsWith("golden:")
            ? GoldenData.Config(source["golden:".Length..])
            : RunConfig.Load(RepositoryPaths.Config(source)).ResolveUNetConfig();
        manual_seed(0);
        using var model = new UNet2DConditionModel(config);
        using var batch = new SyntheticBatch(config, batchSize, tokens, seed: 1);
        var hooked = HookedConvAndLinearFlops(model, batch);
        var counted = ModelFlops.Forward(config, batchSize, tokens);

        Assert.Equal(hooked.Keys.Order(), counted.Where(b => b.ForwardFlops > 0).Select(b => b.Block).Order());
        foreach (var block in counted.Where(b => b.ForwardFlops > 0))
        {
            double matmulFlops = block.ForwardFlops * (1 - block.AttentionShare);
            Assert.True(Math.Abs(matmulFlops - hooked[block.Block]) <= 1e-9 * hooked[block.Block],
                $"{block.Block}: counted {matmulFlops:E6} conv/linear FLOPs, the model computed {hooked[block.Block]:E6}");
        }
    }

    [Fact]
    public void Attention_flops_are_the_two_matmuls_over_image_and_text_tokens()
    {
        // mnist32: one transformer in down_blocks.0 at 32×32 with 32 channels; its scores and weighted sums are
        // 2·(2·B·N·N·C) for self-attention and 2·(2·B·N·T·C) for cross-attention.
        var config = GoldenData.Config("mnist32");
        const int batch = 3, tokens = 7, channels = 32, n = 32 * 32;
        var down0 = ModelFlops.Forward(config, batch, tokens).Single(b => b.Block == "down_blocks.0");
        double expected = 4.0 * batch * n * n * channels + 4.0 * batch * n * tokens * channels;
        Assert.Equal(expected, down0.ForwardFlops * down0.AttentionShare, 6);
    }

    [Fact]
    public void A_training_step_counts_three_forwards()
    {
        var config = GoldenData.Config("mnist32");
        Assert.Equal(3.0, ModelFlops.TrainingStepMultiplier);
        Assert.True(ModelFlops.ForwardTotal(config, 4, 7) > 2 * ModelFlops.ForwardTotal(config, 2, 7) * 0.999);
    }
}
