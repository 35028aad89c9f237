using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Excise.Models.Blocks;

/// <summary>diffusers <c>Timesteps</c> (parameterless): sinusoidal features of the timestep.</summary>
internal static class TimestepProjection
{
    private const double MaxPeriod = 10000;

    /// <summary>Float32 throughout, in diffusers' operation order, so the features match bit for bit.</summary>
    public static Tensor Sinusoidal(Tensor timesteps, int dim, bool flipSinToCos, int freqShift)
    {
        var half = dim / 2;
        var exponent = arange(0, half, dtype: ScalarType.Float32, device: timesteps.device) * (-Math.Log(MaxPeriod));
        exponent = exponent / (half - freqShift);
        var angles = timesteps.to_type(ScalarType.Float32).unsqueeze(1) * exponent.exp().unsqueeze(0);
        return flipSinToCos ? cat([angles.cos(), angles.sin()], -1) : cat([angles.sin(), angles.cos()], -1);
    }
}

/// <summary>diffusers <c>TimestepEmbedding</c>: linear_1, SiLU, linear_2.</summary>
internal sealed class TimestepEmbedding : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // snake_case: state_dict keys
    private readonly Linear linear_1;
    private readonly Linear linear_2;
#pragma warning restore IDE1006

    public TimestepEmbedding(int inFeatures, int embedDim) : base(nameof(TimestepEmbedding))
    {
        linear_1 = nn.Linear(inFeatures, embedDim);
        linear_2 = nn.Linear(embedDim, embedDim);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input) => linear_2.call(nn.functional.silu(linear_1.call(input)));
}
