using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Excise.Models.Blocks;

/// <summary>diffusers <c>Downsample2D</c> with use_conv: a stride-2 3×3 conv. With padding 1 (the UNet) the conv pads
/// every side by one; with padding 0 (the VAE encoder) diffusers instead pads one zero row at the bottom and one zero
/// column at the right before an unpadded conv, which shifts the sampling grid by a pixel.</summary>
internal sealed class Downsample2D : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // snake_case: state_dict key
    private readonly Conv2d conv;
#pragma warning restore IDE1006
    private readonly bool padBottomRight;

    public Downsample2D(int channels, int padding = 1) : base(nameof(Downsample2D))
    {
        if (padding is not (0 or 1)) throw new ArgumentOutOfRangeException(nameof(padding), padding, "Downsample2D is built with padding 0 or 1.");
        conv = nn.Conv2d(channels, channels, 3, stride: 2, padding: padding);
        padBottomRight = padding == 0;
        RegisterComponents();
    }

    public override Tensor forward(Tensor input) =>
        conv.call(padBottomRight ? nn.functional.pad(input, [0, 1, 0, 1]) : input);
}

/// <summary>diffusers <c>Upsample2D</c> with use_conv: nearest-neighbour resize, then a 3×3 conv.</summary>
internal sealed class Upsample2D : nn.Module
{
#pragma warning disable IDE1006 // snake_case: state_dict key
    private readonly Conv2d conv;
#pragma warning restore IDE1006

    public Upsample2D(int channels) : base(nameof(Upsample2D))
    {
        conv = nn.Conv2d(channels, channels, 3, padding: 1);
        RegisterComponents();
    }

    /// <param name="size">Target [H, W]: twice the input for even sizes; the matching skip's size when a
    /// sample side is not a multiple of the total downsampling, as diffusers' forward_upsample_size does.</param>
    public Tensor Forward(Tensor input, long[] size) =>
        conv.call(nn.functional.interpolate(input, size: size, mode: InterpolationMode.Nearest));
}
