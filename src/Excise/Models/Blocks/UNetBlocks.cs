using Excise.Torch;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Excise.Models.Blocks;

/// <summary>Per-forward inputs shared by every block.</summary>
/// <param name="Checkpointed">Run each resnet and each transformer as a checkpointed segment (diffusers' gradient
/// checkpointing: the same segments, recomputed in backward; see <see cref="ActivationCheckpoint"/>).</param>
internal sealed record BlockContext(Tensor ActivatedTimeEmbedding, Tensor TextStates, Tensor? TextMask, bool Checkpointed)
{
    /// <summary><paramref name="resnet"/> on [hidden, skip] concatenated on channels (skip null: hidden alone).</summary>
    public Tensor Resnet(ResnetBlock2D resnet, Tensor hidden, Tensor? skip = null) =>
        Segment(x => resnet.Forward(x[1] is null ? x[0]! : cat([x[0]!, x[1]!], 1), x[2]), hidden, skip, ActivatedTimeEmbedding);

    public Tensor Attention(Transformer2DModel attention, Tensor hidden) =>
        Segment(x => attention.Forward(x[0]!, x[1]!, x[2]), hidden, TextStates, TextMask);

    Tensor Segment(Func<Tensor?[], Tensor> segment, params Tensor?[] inputs) =>
        Checkpointed ? ActivationCheckpoint.Run(segment, inputs) : segment(inputs);
}

/// <summary>diffusers <c>CrossAttnDownBlock2D</c> (with <c>attentions</c>) or <c>DownBlock2D</c> (without).</summary>
internal sealed class DownBlock : nn.Module
{
#pragma warning disable IDE1006 // snake_case: these names become the state_dict keys
    private readonly ModuleList<Transformer2DModel>? attentions;
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Downsample2D>? downsamplers;
#pragma warning restore IDE1006

    public DownBlock(UNetConfig config, int block) : base(nameof(DownBlock))
    {
        var inChannels = block == 0 ? config.BlockOutChannels[0] : config.BlockOutChannels[block - 1];
        var outChannels = config.BlockOutChannels[block];
        var layers = config.LayersPerBlock;
        resnets = new ModuleList<ResnetBlock2D>(Enumerable.Range(0, layers)
            .Select(i => new ResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, config.TimeEmbedDim, config.NormNumGroups, config.NormEps))
            .ToArray());
        if (config.DownBlockTypes[block] == UNetConfig.CrossAttnDownBlock)
            attentions = new ModuleList<Transformer2DModel>(Enumerable.Range(0, layers)
                .Select(_ => new Transformer2DModel(outChannels, config.HeadsForDownBlock(block), config.TransformerLayersForDownBlock(block),
                    config.NormNumGroups, config.CrossAttentionDim, config.UseLinearProjection))
                .ToArray());
        if (block < config.BlockCount - 1) downsamplers = new ModuleList<Downsample2D>(new Downsample2D(outChannels));
        RegisterComponents();
    }

    /// <summary>Runs the block and appends every layer output (and the downsampled output) to <paramref name="skips"/>.</summary>
    public Tensor Forward(Tensor hidden, BlockContext context, List<Tensor> skips)
    {
        for (var i = 0; i < resnets.Count; i++)
        {
            hidden = context.Resnet(resnets[i], hidden);
            if (attentions is not null) hidden = context.Attention(attentions[i], hidden);
            skips.Add(hidden);
        }
        if (downsamplers is not null)
        {
            hidden = downsamplers[0].call(hidden);
            skips.Add(hidden);
        }
        return hidden;
    }
}

/// <summary>diffusers <c>UNetMidBlock2DCrossAttn</c>: resnet, then (transformer, resnet) per layer.</summary>
internal sealed class MidBlock : nn.Module
{
#pragma warning disable IDE1006 // snake_case: these names become the state_dict keys
    private readonly ModuleList<Transformer2DModel> attentions;
    private readonly ModuleList<ResnetBlock2D> resnets;
#pragma warning restore IDE1006

    public MidBlock(UNetConfig config) : base(nameof(MidBlock))
    {
        var channels = config.BlockOutChannels[^1];
        attentions = new ModuleList<Transformer2DModel>(new Transformer2DModel(channels, config.HeadsForMidBlock,
            config.TransformerLayersForMidBlock, config.NormNumGroups, config.CrossAttentionDim, config.UseLinearProjection));
        resnets = new ModuleList<ResnetBlock2D>(Enumerable.Range(0, 2)
            .Select(_ => new ResnetBlock2D(channels, channels, config.TimeEmbedDim, config.NormNumGroups, config.NormEps)).ToArray());
        RegisterComponents();
    }

    public Tensor Forward(Tensor hidden, BlockContext context)
    {
        hidden = context.Resnet(resnets[0], hidden);
        for (var i = 0; i < attentions.Count; i++)
        {
            hidden = context.Attention(attentions[i], hidden);
            hidden = context.Resnet(resnets[i + 1], hidden);
        }
        return hidden;
    }
}

/// <summary>diffusers <c>CrossAttnUpBlock2D</c> (with <c>attentions</c>) or <c>UpBlock2D</c>: layers_per_block + 1
/// resnets, each fed [hidden, most recent skip] concatenated on channels.</summary>
internal sealed class UpBlock : nn.Module
{
#pragma warning disable IDE1006 // snake_case: these names become the state_dict keys
    private readonly ModuleList<Transformer2DModel>? attentions;
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Upsample2D>? upsamplers;
#pragma warning restore IDE1006

    public UpBlock(UNetConfig config, int block) : base(nameof(UpBlock))
    {
        var reversed = config.BlockOutChannels.Reverse().ToArray();
        var last = reversed.Length - 1;
        var prevOutChannels = reversed[Math.Max(block - 1, 0)];
        var outChannels = reversed[block];
        var skipInChannels = reversed[Math.Min(block + 1, last)];
        var layers = config.LayersPerBlock + 1;
        resnets = new ModuleList<ResnetBlock2D>(Enumerable.Range(0, layers).Select(i =>
        {
            var skipChannels = i == layers - 1 ? skipInChannels : outChannels;
            var hiddenChannels = i == 0 ? prevOutChannels : outChannels;
            return new ResnetBlock2D(hiddenChannels + skipChannels, outChannels, config.TimeEmbedDim, config.NormNumGroups, config.NormEps);
        }).ToArray());
        if (config.UpBlockTypes[block] == UNetConfig.CrossAttnUpBlock)
            attentions = new ModuleList<Transformer2DModel>(Enumerable.Range(0, layers)
                .Select(_ => new Transformer2DModel(outChannels, config.HeadsForUpBlock(block), config.TransformerLayersForUpBlock(block),
                    config.NormNumGroups, config.CrossAttentionDim, config.UseLinearProjection))
                .ToArray());
        if (block < last) upsamplers = new ModuleList<Upsample2D>(new Upsample2D(outChannels));
        RegisterComponents();
    }

    public int SkipCount => resnets.Count;

    /// <summary>Consumes skips from the end of <paramref name="skips"/>; upsamples to <paramref name="upsampleSize"/> when given.</summary>
    public Tensor Forward(Tensor hidden, BlockContext context, List<Tensor> skips, long[]? upsampleSize)
    {
        for (var i = 0; i < resnets.Count; i++)
        {
            var skip = skips[^1];
            skips.RemoveAt(skips.Count - 1);
            hidden = context.Resnet(resnets[i], hidden, skip);
            if (attentions is not null) hidden = context.Attention(attentions[i], hidden);
        }
        if (upsamplers is not null)
            hidden = upsamplers[0].Forward(hidden, upsampleSize ?? [hidden.shape[2] * 2, hidden.shape[3] * 2]);
        return hidden;
    }
}
