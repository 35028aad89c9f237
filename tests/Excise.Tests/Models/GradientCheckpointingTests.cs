using Excise.Models;
using Excise.Models.Lora;
using Excise.Tests.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Tests.Models;

/// <summary>The UNet's gradient checkpointing changes memory, not the training signal.</summary>
public sealed class GradientCheckpointingTests
{
    // Recomputation repeats the same float operations; only the order in which a shared input's gradient (the time
    // embedding, the text states) adds up across blocks can differ.
    private const double GradientRelativeTolerance = 1e-5;

    /// <summary>The loss and every parameter's gradient after one backward, in train mode, on a partly masked prompt.</summary>
    static (double Loss, Dictionary<string, Tensor> Gradients, long LiveTensorsAfterForward) Step(UNet2DConditionModel model, bool checkpointing)
    {
        model.GradientCheckpointing = checkpointing;
        model.zero_grad();
        using var generator = new Generator(11);
        var sample = randn(new long[] { 2, 1, 32, 32 }, generator: generator);
        var states = randn(new long[] { 2, 5, 384 }, generator: generator);
        var mask = tensor(new float[,] { { 1, 1, 1, 0, 0 }, { 1, 1, 1, 1, 1 } });
        var target = randn(new long[] { 2, 1, 32, 32 }, generator: generator);
        long live;
        Tensor loss;
        using (var scope = NewDisposeScope())
        {
            loss = (model.forward(sample, tensor(new[] { 10f, 700f }), states, mask) - target).square().mean();
            live = scope.DisposablesCount;
            loss.backward();
            loss = loss.detach().MoveToOuterDisposeScope();
        }
        var gradients = model.named_parameters().Where(p => p.parameter.requires_grad)
            .ToDictionary(p => p.name, p => p.parameter.grad?.clone() ?? throw new Xunit.Sdk.XunitException($"{p.name}: no gradient"));
        return (loss.ToDouble(), gradients, live);
    }

    static double WorstRelativeDifference(Dictionary<string, Tensor> expected, Dictionary<string, Tensor> actual) =>
        expected.Max(e => (actual[e.Key] - e.Value).abs().max().ToDouble() / Math.Max(e.Value.abs().max().ToDouble(), 1e-30));

    [Fact]
    public void A_checkpointed_step_has_the_plain_steps_loss_and_gradients_and_keeps_fewer_tensors_after_forward()
    {
        using var scope = NewDisposeScope();
        using var model = TinyRun.Model(TinyRun.Config());
        model.train();
        var plain = Step(model, checkpointing: false);
        var checkpointed = Step(model, checkpointing: true);

        Assert.Equal(plain.Loss, checkpointed.Loss);
        Assert.Equal(plain.Gradients.Keys, checkpointed.Gradients.Keys);
        var worst = WorstRelativeDifference(plain.Gradients, checkpointed.Gradients);
        Assert.True(worst <= GradientRelativeTolerance, $"worst gradient max|Δ|/max|g| {worst:E2}");
        // The segments' intermediates are released as each segment ends; without that, checkpointing would save nothing.
        Assert.True(checkpointed.LiveTensorsAfterForward * 3 < plain.LiveTensorsAfterForward,
            $"tensors held after forward: {checkpointed.LiveTensorsAfterForward} checkpointed, {plain.LiveTensorsAfterForward} plain");
    }

    [Fact]
    public void LoRA_adapters_behind_frozen_layers_get_their_gradients_when_checkpointed()
    {
        using var scope = NewDisposeScope();
        using var model = TinyRun.Model(TinyRun.Config());
        model.train();
        var adapters = Lora.Inject(model, new LoraOptions());
        using (no_grad())
        using (var generator = new Generator(3))
            foreach (var (_, p) in adapters.Parameters()) p.copy_(randn(p.shape, generator: generator).mul_(0.1));
        // Only the adapters train: no input of any block needs a gradient, the case the anchor exists for.
        var plain = Step(model, checkpointing: false);
        var checkpointed = Step(model, checkpointing: true);

        Assert.Equal(adapters.Parameters().Select(p => p.Name).Order(), plain.Gradients.Keys.Order());
        Assert.All(checkpointed.Gradients.Values, g => Assert.True(g.abs().max().ToDouble() > 0));
        var worst = WorstRelativeDifference(plain.Gradients, checkpointed.Gradients);
        Assert.True(worst <= GradientRelativeTolerance, $"worst adapter gradient max|Δ|/max|g| {worst:E2}");
    }

    [Fact]
    public void Without_gradients_a_checkpointed_model_samples_exactly_as_a_plain_one()
    {
        using var scope = NewDisposeScope();
        using var model = TinyRun.Model(TinyRun.Config());
        model.eval();
        using var _ = no_grad();
        var sample = randn(new long[] { 1, 1, 32, 32 }, generator: new Generator(5));
        var states = randn(new long[] { 1, 5, 384 }, generator: new Generator(6));
        var plain = model.forward(sample, tensor(500f), states);
        model.GradientCheckpointing = true;
        Assert.True(plain.eq(model.forward(sample, tensor(500f), states)).all().ToBoolean());
    }
}
