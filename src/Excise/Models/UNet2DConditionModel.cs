using Excise.Models.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Excise.Models;

/// <summary>
/// diffusers' <c>UNet2DConditionModel</c> (v0.31 semantics) in TorchSharp, with diffusers' exact parameter
/// names so its checkpoints load by name and cross-attention key/value weights can be found by name.
/// Forward: (sample [B,C,H,W], timesteps [B] or one value, text states [B,T,D], optional text mask [B,T]
/// with 1 = keep, 0 = padding) → noise prediction [B,out,H,W].
/// </summary>
public sealed partial class UNet2DConditionModel : nn.Module<Tensor, Tensor, Tensor, Tensor?, Tensor>
{
    /// <summary>diffusers turns the keep/pad mask into this additive score bias for padded tokens.</summary>
    private const double MaskedScoreBias = -10000.0;

#pragma warning disable IDE1006 // snake_case: these names become the state_dict keys
    private readonly Conv2d conv_in;
    private readonly TimestepEmbedding time_embedding;
    private readonly ModuleList<DownBlock> down_blocks;
    private readonly ModuleList<UpBlock> up_blocks;
    private readonly MidBlock mid_block;
    private readonly GroupNorm conv_norm_out;
    private readonly Conv2d conv_out;
#pragma warning restore IDE1006

    public UNet2DConditionModel(UNetConfig config) : base(nameof(UNet2DConditionModel))
    {
        Config = config.Validate();
        var blocks = config.BlockCount;
        conv_in = nn.Conv2d(config.InChannels, config.BlockOutChannels[0], 3, padding: 1);
        time_embedding = new TimestepEmbedding(config.TimestepFeatureDim, config.TimeEmbedDim);
        down_blocks = new ModuleList<DownBlock>(Enumerable.Range(0, blocks).Select(i => new DownBlock(config, i)).ToArray());
        mid_block = new MidBlock(config);
        up_blocks = new ModuleList<UpBlock>(Enumerable.Range(0, blocks).Select(i => new UpBlock(config, i)).ToArray());
        conv_norm_out = Norms.Group(config.NormNumGroups, config.BlockOutChannels[0], config.NormEps);
        conv_out = nn.Conv2d(config.BlockOutChannels[0], config.OutChannels, 3, padding: 1);
        RegisterComponents();
        ParameterCount = parameters().Sum(p => p.numel());
    }

    public UNetConfig Config { get; }

    public long ParameterCount { get; }

    /// <summary>
    /// diffusers' gradient checkpointing: while gradients are on, each resnet and each transformer of the down, mid and
    /// up blocks keeps only its inputs and recomputes its activations in backward (one more forward of most of the
    /// network per step, for a fraction of the activation memory; figures in docs/performance.md). The outputs and
    /// gradients are those of the plain forward, up to the order in which shared gradients add up. Off by default.
    /// </summary>
    public bool GradientCheckpointing { get; set; }

    /// <summary>Every cross-attention <c>attn2.to_k.weight</c> and <c>attn2.to_v.weight</c>, by full name,
    /// in state_dict order. Their input width is <see cref="UNetConfig.CrossAttentionDim"/>.</summary>
    public IEnumerable<(string Name, Parameter Param)> CrossAttentionKeyValueWeights() =>
        named_parameters().Where(p => p.name.EndsWith(".attn2.to_k.weight", StringComparison.Ordinal)
                                      || p.name.EndsWith(".attn2.to_v.weight", StringComparison.Ordinal));

    /// <remarks>Intermediates land in the caller's dispose scope; wrap each step or sampling call in one.</remarks>
    public override Tensor forward(Tensor sample, Tensor timesteps, Tensor encoderHiddenStates, Tensor? encoderAttentionMask = null) =>
        Forward(sample, timesteps, encoderHiddenStates, encoderAttentionMask, observer: null);

    /// <summary>As <see cref="forward"/>, reporting diffusers' block outputs (<c>time_proj</c>, <c>time_embedding</c>,
    /// <c>conv_in</c>, <c>down_blocks.i</c>, <c>mid_block</c>, <c>up_blocks.i</c>) to <paramref name="observer"/>.</summary>
    public Tensor Forward(Tensor sample, Tensor timesteps, Tensor encoderHiddenStates, Tensor? encoderAttentionMask,
        Action<string, Tensor>? observer)
    {
        CheckInputs(sample, timesteps, encoderHiddenStates, encoderAttentionMask);
        var batch = sample.shape[0];

        var timeFeatures = TimestepProjection.Sinusoidal(timesteps.reshape(-1).expand(batch), Config.TimestepFeatureDim,
            Config.FlipSinToCos, Config.FreqShift).to_type(sample.dtype);
        observer?.Invoke("time_proj", timeFeatures);
        var timeEmbedding = time_embedding.call(timeFeatures);
        observer?.Invoke("time_embedding", timeEmbedding);

        var textMask = encoderAttentionMask is null
            ? null
            : (1 - encoderAttentionMask.to_type(sample.dtype)).mul_(MaskedScoreBias).view(batch, 1, 1, -1);
        var context = new BlockContext(nn.functional.silu(timeEmbedding), encoderHiddenStates, textMask, GradientCheckpointing);

        var hidden = conv_in.call(sample);
        observer?.Invoke("conv_in", hidden);
        var skips = new List<Tensor> { hidden };
        for (var i = 0; i < down_blocks.Count; i++)
        {
            hidden = down_blocks[i].Forward(hidden, context, skips);
            observer?.Invoke($"down_blocks.{i}", hidden);
        }

        hidden = mid_block.Forward(hidden, context);
        observer?.Invoke("mid_block", hidden);

        for (var i = 0; i < up_blocks.Count; i++)
        {
            var block = up_blocks[i];
            var remaining = skips.Count - block.SkipCount;
            // The next block's first skip has the size this block must upsample to (diffusers' upsample_size).
            long[]? upsampleSize = remaining > 0 ? [skips[remaining - 1].shape[2], skips[remaining - 1].shape[3]] : null;
            hidden = block.Forward(hidden, context, skips, upsampleSize);
            observer?.Invoke($"up_blocks.{i}", hidden);
        }

        return conv_out.call(nn.functional.silu(conv_norm_out.call(hidden)));
    }

    private void CheckInputs(Tensor sample, Tensor timesteps, Tensor textStates, Tensor? textMask)
    {
        if (sample.dim() != 4 || sample.shape[1] != Config.InChannels)
            throw new ArgumentException($"sample must be [B, {Config.InChannels}, H, W]; got [{string.Join(", ", sample.shape)}].", nameof(sample));
        var batch = sample.shape[0];
        if (timesteps.numel() != 1 && timesteps.numel() != batch)
            throw new ArgumentException($"timesteps must hold 1 or {batch} values; got [{string.Join(", ", timesteps.shape)}].", nameof(timesteps));
        if (textStates.dim() != 3 || textStates.shape[0] != batch || textStates.shape[2] != Config.CrossAttentionDim)
            throw new ArgumentException($"encoderHiddenStates must be [{batch}, T, {Config.CrossAttentionDim}]; got [{string.Join(", ", textStates.shape)}].", nameof(textStates));
        if (textMask is not null && (textMask.dim() != 2 || textMask.shape[0] != batch || textMask.shape[1] != textStates.shape[1]))
            throw new ArgumentException($"encoderAttentionMask must be [{batch}, {textStates.shape[1]}]; got [{string.Join(", ", textMask.shape)}].", nameof(textMask));
    }
}
