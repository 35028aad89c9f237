using Excise.Diffusion;
using Excise.Training;
using static TorchSharp.torch;

namespace Excise.Tests.Diffusion;

/// <summary>
/// v-prediction (Stable Diffusion 2.x at 768 px) trains against v = √ᾱ·ε − √(1 − ᾱ)·x₀ and samples by turning v back into
/// ε; epsilon prediction, every run's until now, is untouched: same target tensor, same loss, same config hashes.
/// </summary>
public sealed class PredictionTypeTests
{
    [Theory]
    [InlineData("smoke", "ec4004c2ca1ba724", "8a11d7b87ac65823")]
    [InlineData("base", "3adec65f8ca344fc", "59c12ad0ec9e2817")]
    public void Existing_configs_hash_as_they_did_before_prediction_type_existed(string name, string hash, string hashWithBudget)
    {
        // Measured with the commit before prediction_type was added (79fdeb4).
        var config = RunConfig.Load(RepositoryPaths.Config(name));
        Assert.Equal(hash, config.Hash());
        Assert.Equal(hashWithBudget, config.Hash(includeStepBudget: true));
        Assert.Equal(hash, RunConfig.Load(RepositoryPaths.Config(name), ["diffusion.prediction_type=epsilon"]).Hash());

        var velocity = RunConfig.Load(RepositoryPaths.Config(name), ["diffusion.prediction_type=v_prediction"]);
        Assert.Equal(PredictionType.VPrediction, velocity.DiffusionOrDefault.PredictionType);
        Assert.NotEqual(hash, velocity.Hash());
        Assert.Contains("\"prediction_type\": \"v_prediction\"", velocity.ToJson());
    }

    [Fact]
    public void The_epsilon_target_is_the_noise_itself_and_the_v_target_follows_the_formula()
    {
        using var scope = NewDisposeScope();
        var options = new NoiseScheduleOptions(BetaSchedule.ScaledLinear, 1000, 0.00085, 0.012);
        var x0 = randn(3, 2, 4, 4, generator: new TorchSharp.torch.Generator(1));
        var noise = randn(3, 2, 4, 4, generator: new TorchSharp.torch.Generator(2));
        var timesteps = tensor(new long[] { 0, 500, 999 });

        Assert.Same(noise, DenoisingObjective.Target(new NoiseSchedule(options), x0, noise, timesteps));

        var schedule = new NoiseSchedule(options with { PredictionType = PredictionType.VPrediction });
        var v = DenoisingObjective.Target(schedule, x0, noise, timesteps);
        var steps = new[] { 0, 500, 999 };
        for (int i = 0; i < 3; i++)
        {
            double alphaBar = schedule.AlphasCumprod[steps[i]];
            var expected = Math.Sqrt(alphaBar) * noise[i] - Math.Sqrt(1 - alphaBar) * x0[i];
            Assert.True((v[i] - expected).abs().max().ToDouble() < 1e-6, $"v at t = {steps[i]}");
        }
        // At t = 999 (ᾱ ≈ 0.005) v is mostly −x₀, at t = 0 mostly ε: a swapped sign or factor would not be.
        Assert.True((v[2] + x0[2]).abs().max().ToDouble() < 0.2);
        Assert.True((v[0] - noise[0]).abs().max().ToDouble() < 0.1);
    }

    [Fact]
    public void The_loss_scores_the_prediction_against_the_schedules_target()
    {
        using var scope = NewDisposeScope();
        var options = new NoiseScheduleOptions();
        var x0 = randn(2, 1, 4, 4, generator: new TorchSharp.torch.Generator(3));
        var noise = randn(2, 1, 4, 4, generator: new TorchSharp.torch.Generator(4));
        var timesteps = tensor(new long[] { 10, 900 });
        var states = zeros(2, 3, 8);
        var guess = randn(2, 1, 4, 4, generator: new TorchSharp.torch.Generator(5));
        NoisePredictor predict = (_, _, _, _) => guess;

        var epsilonLoss = DenoisingObjective.Loss(predict, new NoiseSchedule(options), x0, noise, timesteps, states, null);
        Assert.Equal(nn.functional.mse_loss(guess, noise).ToSingle(), epsilonLoss.ToSingle());

        var velocity = new NoiseSchedule(options with { PredictionType = PredictionType.VPrediction });
        var velocityLoss = DenoisingObjective.Loss(predict, velocity, x0, noise, timesteps, states, null);
        Assert.Equal(nn.functional.mse_loss(guess, velocity.Velocity(x0, noise, timesteps)).ToSingle(), velocityLoss.ToSingle());
        Assert.NotEqual(epsilonLoss.ToSingle(), velocityLoss.ToSingle());
    }

    [Theory]
    [InlineData(PredictionType.Epsilon)]
    [InlineData(PredictionType.VPrediction)]
    public void A_perfect_model_of_either_kind_samples_the_same_clean_image(PredictionType kind)
    {
        using var scope = NewDisposeScope();
        var schedule = new NoiseSchedule(new NoiseScheduleOptions(BetaSchedule.ScaledLinear, 1000, 0.00085, 0.012, kind));
        var target = full(1, 1, 4, 4, 0.25f);
        // An oracle that knows x₀: ε = (x_t − √ᾱ·x₀)/√(1 − ᾱ), and v from ε and x₀.
        NoisePredictor oracle = (x, t, _, _) =>
        {
            double alphaBar = schedule.AlphasCumprod[(int)t[0].ToSingle()];
            var eps = (x - Math.Sqrt(alphaBar) * target) / Math.Sqrt(1 - alphaBar);
            return kind == PredictionType.Epsilon ? eps : Math.Sqrt(alphaBar) * eps - Math.Sqrt(1 - alphaBar) * target;
        };
        var states = zeros(1, 3, 8);
        var mask = ones(1, 3);
        var sample = new DiffusionSampler(schedule).Sample(oracle, [1, 1, 4, 4], states, mask, states, mask,
            new SamplingOptions(Steps: 10, GuidanceScale: 1.0, ClipSample: false));
        Assert.True((sample - target).abs().max().ToDouble() < 1e-4, $"{kind}: sampled {sample.mean().ToDouble()} instead of 0.25");
    }
}
