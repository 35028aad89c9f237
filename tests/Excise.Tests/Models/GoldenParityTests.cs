using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Excise.Tests.Models;

/// <summary>Our UNet with diffusers' weights reproduces diffusers' output, loss and K/V gradients (tolerances from tests/golden/README.md).</summary>
public sealed class GoldenParityTests(ITestOutputHelper output)
{
    private const double OutputTolerance = 5e-6;
    private const double LossRelativeTolerance = 1e-5;
    private const double GradientRelativeTolerance = 2e-5;
    // Block activations: relative to each tensor's own magnitude, at the output's relative budget.
    private const double ActivationRelativeTolerance = 5e-6;

    [Theory]
    [InlineData("mnist32", false)]
    [InlineData("sdtiny", false)]
    [InlineData("sdtiny", true)] // the gradients recomputed block by block in backward are diffusers' too
    public void Reproduces_diffusers_output_loss_gradients_and_activations(string name, bool gradientCheckpointing)
    {
        using var scope = NewDisposeScope();
        var model = GoldenData.LoadedModel(name);
        model.GradientCheckpointing = gradientCheckpointing;
        var io = GoldenData.Io(name);

        var activations = new Dictionary<string, Tensor>();
        Tensor prediction;
        using (no_grad())
            prediction = model.Forward(io["x"], io["timesteps"], io["encoder_hidden_states"], null,
                (key, value) => activations[key] = value.detach().clone());

        var outputDelta = MaxAbs(prediction - io["output"]);
        output.WriteLine($"{name}: output max|Δ| = {outputDelta:E2}");
        Assert.True(outputDelta <= OutputTolerance, $"{name}: output max|Δ| {outputDelta:E2} > {OutputTolerance:E0}");

        foreach (var key in io.Keys.Where(k => k.StartsWith("act.")))
        {
            var ours = activations[key["act.".Length..]];
            var relative = MaxAbs(ours - io[key]) / MaxAbs(io[key]);
            output.WriteLine($"{name}: {key} max|Δ|/max = {relative:E2}");
            Assert.True(relative <= ActivationRelativeTolerance, $"{name}: {key} relative max|Δ| {relative:E2}");
        }

        var loss = model.forward(io["x"], io["timesteps"], io["encoder_hidden_states"]).square().mean();
        var expectedLoss = io["loss"].ToSingle();
        var lossRelative = Math.Abs(loss.ToSingle() - expectedLoss) / Math.Abs(expectedLoss);
        output.WriteLine($"{name}: loss {loss.ToSingle()} vs {expectedLoss}, relative {lossRelative:E2}");
        Assert.True(lossRelative <= LossRelativeTolerance, $"{name}: loss relative diff {lossRelative:E2}");

        loss.backward();
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var gradientKeys = io.Keys.Where(k => k.StartsWith("grad.")).ToArray();
        Assert.Equal(name == "mnist32" ? 8 : 32, gradientKeys.Length);
        var worst = 0.0;
        foreach (var key in gradientKeys)
        {
            var expected = io[key];
            var actual = parameters[key["grad.".Length..]].grad ?? throw new Xunit.Sdk.XunitException($"{key}: no gradient");
            var relative = MaxAbs(actual - expected) / MaxAbs(expected);
            worst = Math.Max(worst, relative);
            Assert.True(relative <= GradientRelativeTolerance, $"{name}: {key} max|Δ|/max|g| = {relative:E2}");
        }
        output.WriteLine($"{name}: worst gradient max|Δ|/max|g| = {worst:E2} over {gradientKeys.Length} tensors");
    }

    private static double MaxAbs(Tensor t) => t.abs().max().ToSingle();
}
