using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Excise.Models.Blocks;

/// <summary>diffusers <c>ResnetBlock2D</c> (time_scale_shift "default", output scale 1). Field names are
/// diffusers' parameter names, which TorchSharp derives from them. Without a time embedding width (diffusers'
/// <c>temb_channels=None</c>, the VAE's resnets) there is no <c>time_emb_proj</c> and nothing is added after conv1.</summary>
internal sealed class ResnetBlock2D : nn.Module
{
#pragma warning disable IDE1006 // snake_case: these names become the state_dict keys
    private readonly GroupNorm norm1;
    private readonly Conv2d conv1;
    private readonly Linear? time_emb_proj;
    private readonly GroupNorm norm2;
    private readonly Conv2d conv2;
    private readonly Conv2d? conv_shortcut;
#pragma warning restore IDE1006

    public ResnetBlock2D(int inChannels, int outChannels, int? timeEmbedDim, int groups, double eps) : base(nameof(ResnetBlock2D))
    {
        norm1 = Norms.Group(groups, inChannels, eps);
        conv1 = nn.Conv2d(inChannels, outChannels, 3, padding: 1);
        if (timeEmbedDim is int width) time_emb_proj = nn.Linear(width, outChannels);
        norm2 = Norms.Group(groups, outChannels, eps);
        conv2 = nn.Conv2d(outChannels, outChannels, 3, padding: 1);
        if (inChannels != outChannels) conv_shortcut = nn.Conv2d(inChannels, outChannels, 1);
        RegisterComponents();
    }

    /// <param name="activatedTimeEmbedding">SiLU(temb), computed once per forward and shared by every resnet; null
    /// exactly when the block was built without a time embedding width.</param>
    public Tensor Forward(Tensor input, Tensor? activatedTimeEmbedding)
    {
        if ((time_emb_proj is null) != (activatedTimeEmbedding is null))
            throw new ArgumentException(time_emb_proj is null
                ? "This resnet has no time embedding projection; pass no time embedding."
                : "This resnet needs the activated time embedding.", nameof(activatedTimeEmbedding));
        var hidden = conv1.call(nn.functional.silu(norm1.call(input)));
        if (time_emb_proj is not null)
            hidden = hidden + time_emb_proj.call(activatedTimeEmbedding!).unsqueeze(-1).unsqueeze(-1);
        hidden = conv2.call(nn.functional.silu(norm2.call(hidden)));
        var shortcut = conv_shortcut?.call(input) ?? input;
        return shortcut + hidden;
    }
}
