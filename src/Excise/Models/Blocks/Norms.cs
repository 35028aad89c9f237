using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Excise.Models.Blocks;

/// <summary>Norm layers with their affine parameters set explicitly: TorchSharp's GroupNorm
/// leaves weight/bias uninitialised, which would make a fresh model depend on heap contents.</summary>
internal static class Norms
{
    public static GroupNorm Group(int groups, int channels, double eps)
    {
        var norm = nn.GroupNorm(groups, channels, eps, affine: true);
        Reset(norm.weight!, norm.bias!);
        return norm;
    }

    public static LayerNorm Layer(int features, double eps)
    {
        var norm = nn.LayerNorm(features, eps, elementwise_affine: true);
        Reset(norm.weight!, norm.bias!);
        return norm;
    }

    private static void Reset(Tensor weight, Tensor bias)
    {
        using var _ = no_grad();
        nn.init.ones_(weight);
        nn.init.zeros_(bias);
    }
}
