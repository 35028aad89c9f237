using Excise.Models.Blocks;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Excise.Models.Vae;

/// <summary>The VAE's building blocks are full-resolution convolutions: at Stable Diffusion sizes (512² images, 128–512
/// channels) one block's temporaries are hundreds of megabytes, so each block frees its own before the next runs.</summary>
internal static class BlockScope
{
    /// <summary>Runs <paramref name="compute"/> in a dispose scope of its own; only its (newly made) result survives.</summary>
    public static Tensor Run(Func<Tensor> compute)
    {
        using var scope = NewDisposeScope();
        return compute().MoveToOuterDisposeScope();
    }
}

/// <summary>
/// diffusers' <c>Attention</c> as the VAE's mid block builds it (<c>_from_deprecated_attn_block</c>): GroupNorm (eps
/// 1e-6) over NCHW, H·W tokens, q/k/v Linear layers <b>with</b> bias, one head as wide as the channels (diffusers passes
/// attention_head_dim = channels), softmax in at least float32 (<c>upcast_softmax</c>), <c>to_out.0</c> Linear with bias, back
/// to NCHW, plus the un-normalised input. The UNet's <see cref="Attention"/> differs in each of these (bias-free q/k/v,
/// no norm, no residual, token input), which is why this is a separate module.
/// </summary>
internal sealed class VaeAttention : nn.Module
{
#pragma warning disable IDE1006 // snake_case: these names become the state_dict keys
    private readonly GroupNorm group_norm;
    private readonly Linear to_q;
    private readonly Linear to_k;
    private readonly Linear to_v;
    private readonly ModuleList<nn.Module<Tensor, Tensor>> to_out;
#pragma warning restore IDE1006
    private readonly double scale;

    public VaeAttention(int channels, int groups, double eps) : base(nameof(VaeAttention))
    {
        group_norm = Norms.Group(groups, channels, eps);
        to_q = nn.Linear(channels, channels);
        to_k = nn.Linear(channels, channels);
        to_v = nn.Linear(channels, channels);
        // to_out.1 is diffusers' parameterless Dropout(0); kept so the index of the Linear stays 0.
        to_out = new ModuleList<nn.Module<Tensor, Tensor>>(nn.Linear(channels, channels), nn.Dropout(0.0));
        scale = Math.Pow(channels, -0.5);
        RegisterComponents();
    }

    public Tensor Forward(Tensor input) => BlockScope.Run(() =>
    {
        var (batch, channels, height, width) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3]);
        var tokens = group_norm.call(input).view(batch, channels, height * width).transpose(1, 2);
        var q = to_q.call(tokens);
        var k = to_k.call(tokens);
        var v = to_v.call(tokens);
        var scores = q.matmul(k.transpose(1, 2)).mul_(scale);
        // diffusers' upcast_softmax calls .float(), which would also round a float64 model's scores down to float32;
        // only half-precision scores are widened here.
        var softmaxType = scores.dtype is ScalarType.Float16 or ScalarType.BFloat16 ? ScalarType.Float32 : scores.dtype;
        var probabilities = scores.to_type(softmaxType).softmax(-1).to_type(v.dtype);
        var attended = to_out[0].call(probabilities.matmul(v));
        return attended.transpose(1, 2).reshape(batch, channels, height, width) + input;
    });
}

/// <summary>diffusers' <c>UNetMidBlock2D</c> without a time embedding: resnet, then (attention, resnet); the attention
/// is absent when <c>mid_block_add_attention</c> is false.</summary>
internal sealed class VaeMidBlock : nn.Module
{
#pragma warning disable IDE1006 // snake_case: these names become the state_dict keys; attentions come first in diffusers' state_dict
    private readonly ModuleList<VaeAttention>? attentions;
    private readonly ModuleList<ResnetBlock2D> resnets;
#pragma warning restore IDE1006

    public VaeMidBlock(int channels, int groups, bool addAttention) : base(nameof(VaeMidBlock))
    {
        if (addAttention) attentions = new ModuleList<VaeAttention>(new VaeAttention(channels, groups, AutoencoderKL.NormEps));
        resnets = new ModuleList<ResnetBlock2D>(Enumerable.Range(0, 2)
            .Select(_ => new ResnetBlock2D(channels, channels, timeEmbedDim: null, groups, AutoencoderKL.NormEps)).ToArray());
        RegisterComponents();
    }

    /// <param name="name">The block's module name (<c>encoder.mid_block</c>), under which the attention is reported.</param>
    public Tensor Forward(Tensor hidden, Action<string, Tensor>? observer, string name)
    {
        hidden = BlockScope.Run(() => resnets[0].Forward(hidden, null));
        if (attentions is not null)
        {
            hidden = attentions[0].Forward(hidden);
            observer?.Invoke($"{name}.attentions.0", hidden);
        }
        return BlockScope.Run(() => resnets[1].Forward(hidden, null));
    }
}

/// <summary>diffusers' <c>DownEncoderBlock2D</c>: layers_per_block resnets, then (except in the last block) a
/// <see cref="Downsample2D"/> with diffusers' padding 0, i.e. the bottom/right zero pad.</summary>
internal sealed class DownEncoderBlock : nn.Module
{
#pragma warning disable IDE1006 // snake_case: these names become the state_dict keys
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Downsample2D>? downsamplers;
#pragma warning restore IDE1006

    public DownEncoderBlock(int inChannels, int outChannels, int layers, int groups, bool addDownsample) : base(nameof(DownEncoderBlock))
    {
        resnets = new ModuleList<ResnetBlock2D>(Enumerable.Range(0, layers)
            .Select(i => new ResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, timeEmbedDim: null, groups, AutoencoderKL.NormEps)).ToArray());
        if (addDownsample) downsamplers = new ModuleList<Downsample2D>(new Downsample2D(outChannels, padding: 0));
        RegisterComponents();
    }

    public Tensor Forward(Tensor hidden) => BlockScope.Run(() =>
    {
        foreach (var resnet in resnets) hidden = resnet.Forward(hidden, null);
        return downsamplers is null ? hidden : downsamplers[0].call(hidden);
    });
}

/// <summary>diffusers' <c>UpDecoderBlock2D</c>: layers_per_block + 1 resnets (no skip connections from the encoder),
/// then (except in the last block) an <see cref="Upsample2D"/> to twice the size.</summary>
internal sealed class UpDecoderBlock : nn.Module
{
#pragma warning disable IDE1006 // snake_case: these names become the state_dict keys
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Upsample2D>? upsamplers;
#pragma warning restore IDE1006

    public UpDecoderBlock(int inChannels, int outChannels, int layers, int groups, bool addUpsample) : base(nameof(UpDecoderBlock))
    {
        resnets = new ModuleList<ResnetBlock2D>(Enumerable.Range(0, layers)
            .Select(i => new ResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, timeEmbedDim: null, groups, AutoencoderKL.NormEps)).ToArray());
        if (addUpsample) upsamplers = new ModuleList<Upsample2D>(new Upsample2D(outChannels));
        RegisterComponents();
    }

    public Tensor Forward(Tensor hidden) => BlockScope.Run(() =>
    {
        foreach (var resnet in resnets) hidden = resnet.Forward(hidden, null);
        return upsamplers is null ? hidden : upsamplers[0].Forward(hidden, [hidden.shape[2] * 2, hidden.shape[3] * 2]);
    });
}

/// <summary>diffusers' VAE <c>Encoder</c> (double_z): conv_in, the down blocks, the mid block, GroupNorm, SiLU and a
/// conv_out to 2 × latent_channels (mean and log-variance).</summary>
internal sealed class VaeEncoder : nn.Module
{
#pragma warning disable IDE1006 // snake_case: these names become the state_dict keys
    private readonly Conv2d conv_in;
    private readonly ModuleList<DownEncoderBlock> down_blocks;
    private readonly VaeMidBlock mid_block;
    private readonly GroupNorm conv_norm_out;
    private readonly Conv2d conv_out;
#pragma warning restore IDE1006

    public VaeEncoder(VaeConfig config) : base(nameof(VaeEncoder))
    {
        var channels = config.BlockOutChannels;
        conv_in = nn.Conv2d(config.InChannels, channels[0], 3, padding: 1);
        down_blocks = new ModuleList<DownEncoderBlock>(Enumerable.Range(0, config.BlockCount)
            .Select(i => new DownEncoderBlock(i == 0 ? channels[0] : channels[i - 1], channels[i], config.LayersPerBlock,
                config.NormNumGroups, addDownsample: i < config.BlockCount - 1))
            .ToArray());
        mid_block = new VaeMidBlock(channels[^1], config.NormNumGroups, config.MidBlockAddAttention);
        conv_norm_out = Norms.Group(config.NormNumGroups, channels[^1], AutoencoderKL.NormEps);
        conv_out = nn.Conv2d(channels[^1], 2 * config.LatentChannels, 3, padding: 1);
        RegisterComponents();
    }

    public Tensor Forward(Tensor image, Action<string, Tensor>? observer)
    {
        var hidden = conv_in.call(image);
        observer?.Invoke("encoder.conv_in", hidden);
        for (var i = 0; i < down_blocks.Count; i++)
        {
            hidden = down_blocks[i].Forward(hidden);
            observer?.Invoke($"encoder.down_blocks.{i}", hidden);
        }
        hidden = mid_block.Forward(hidden, observer, "encoder.mid_block");
        observer?.Invoke("encoder.mid_block", hidden);
        hidden = BlockScope.Run(() => conv_out.call(nn.functional.silu(conv_norm_out.call(hidden))));
        observer?.Invoke("encoder.conv_out", hidden);
        return hidden;
    }
}

/// <summary>diffusers' VAE <c>Decoder</c>: conv_in, the mid block, the up blocks (channels reversed), GroupNorm, SiLU,
/// conv_out. The up blocks are declared before the mid block because diffusers registers them first, which fixes
/// the state_dict order.</summary>
internal sealed class VaeDecoder : nn.Module
{
#pragma warning disable IDE1006 // snake_case: these names become the state_dict keys
    private readonly Conv2d conv_in;
    private readonly ModuleList<UpDecoderBlock> up_blocks;
    private readonly VaeMidBlock mid_block;
    private readonly GroupNorm conv_norm_out;
    private readonly Conv2d conv_out;
#pragma warning restore IDE1006

    public VaeDecoder(VaeConfig config) : base(nameof(VaeDecoder))
    {
        var reversed = config.BlockOutChannels.Reverse().ToArray();
        conv_in = nn.Conv2d(config.LatentChannels, reversed[0], 3, padding: 1);
        up_blocks = new ModuleList<UpDecoderBlock>(Enumerable.Range(0, config.BlockCount)
            .Select(i => new UpDecoderBlock(reversed[Math.Max(i - 1, 0)], reversed[i], config.LayersPerBlock + 1,
                config.NormNumGroups, addUpsample: i < config.BlockCount - 1))
            .ToArray());
        mid_block = new VaeMidBlock(reversed[0], config.NormNumGroups, config.MidBlockAddAttention);
        conv_norm_out = Norms.Group(config.NormNumGroups, reversed[^1], AutoencoderKL.NormEps);
        conv_out = nn.Conv2d(reversed[^1], config.OutChannels, 3, padding: 1);
        RegisterComponents();
    }

    public Tensor Forward(Tensor latents, Action<string, Tensor>? observer)
    {
        var hidden = conv_in.call(latents);
        observer?.Invoke("decoder.conv_in", hidden);
        hidden = mid_block.Forward(hidden, observer, "decoder.mid_block");
        observer?.Invoke("decoder.mid_block", hidden);
        for (var i = 0; i < up_blocks.Count; i++)
        {
            hidden = up_blocks[i].Forward(hidden);
            observer?.Invoke($"decoder.up_blocks.{i}", hidden);
        }
        return BlockScope.Run(() => conv_out.call(nn.functional.silu(conv_norm_out.call(hidden))));
    }
}
