namespace Excise.Models;

/// <summary>
/// The subset of diffusers' <c>UNet2DConditionModel</c> config that Excise builds. Defaults are
/// diffusers' own defaults, so a bare <c>config.json</c> that omits a key means the same thing here.
/// Per-block lists hold either one value (broadcast to every block, as diffusers does for an int)
/// or one value per down block.
/// </summary>
public sealed partial record UNetConfig
{
    public const string CrossAttnDownBlock = "CrossAttnDownBlock2D";
    public const string PlainDownBlock = "DownBlock2D";
    public const string CrossAttnUpBlock = "CrossAttnUpBlock2D";
    public const string PlainUpBlock = "UpBlock2D";
    public const string CrossAttnMidBlock = "UNetMidBlock2DCrossAttn";

    public int SampleSize { get; init; } = 64;
    public int InChannels { get; init; } = 4;
    public int OutChannels { get; init; } = 4;
    public IReadOnlyList<int> BlockOutChannels { get; init; } = [320, 640, 1280, 1280];
    public int LayersPerBlock { get; init; } = 2;
    public IReadOnlyList<string> DownBlockTypes { get; init; } =
        [CrossAttnDownBlock, CrossAttnDownBlock, CrossAttnDownBlock, PlainDownBlock];
    public string MidBlockType { get; init; } = CrossAttnMidBlock;
    public IReadOnlyList<string> UpBlockTypes { get; init; } =
        [PlainUpBlock, CrossAttnUpBlock, CrossAttnUpBlock, CrossAttnUpBlock];
    public int CrossAttentionDim { get; init; } = 1280;

    /// <summary>Diffusers' <c>attention_head_dim</c>. Despite the name, when
    /// <see cref="NumAttentionHeads"/> is absent it is the number of heads (diffusers' long-standing quirk).</summary>
    public IReadOnlyList<int> AttentionHeadDim { get; init; } = [8];
    public IReadOnlyList<int>? NumAttentionHeads { get; init; }
    public IReadOnlyList<int> TransformerLayersPerBlock { get; init; } = [1];
    public int NormNumGroups { get; init; } = 32;
    public double NormEps { get; init; } = 1e-5;
    public bool FlipSinToCos { get; init; } = true;
    public int FreqShift { get; init; }
    public int DownsamplePadding { get; init; } = 1;
    public string ActFn { get; init; } = "silu";
    public bool UseLinearProjection { get; init; }

    /// <summary>Width of the timestep embedding; diffusers' default is 4 × block_out_channels[0].</summary>
    public int? TimeEmbeddingDim { get; init; }

    public int BlockCount => BlockOutChannels.Count;
    public int TimestepFeatureDim => BlockOutChannels[0];
    public int TimeEmbedDim => TimeEmbeddingDim ?? BlockOutChannels[0] * 4;

    /// <summary>Heads of the transformers in down block <paramref name="block"/>.</summary>
    public int HeadsForDownBlock(int block) => PerBlock(NumAttentionHeads ?? AttentionHeadDim, block);

    /// <summary>Up block i mirrors down block (count − 1 − i), as diffusers reverses the per-block lists.</summary>
    public int HeadsForUpBlock(int block) => HeadsForDownBlock(BlockCount - 1 - block);

    public int HeadsForMidBlock => HeadsForDownBlock(BlockCount - 1);

    public int TransformerLayersForDownBlock(int block) => PerBlock(TransformerLayersPerBlock, block);
    public int TransformerLayersForUpBlock(int block) => TransformerLayersForDownBlock(BlockCount - 1 - block);
    public int TransformerLayersForMidBlock => TransformerLayersForDownBlock(BlockCount - 1);

    private static int PerBlock(IReadOnlyList<int> values, int block) => values.Count == 1 ? values[0] : values[block];

    /// <summary>Whether level <paramref name="block"/> has transformers: its down block, its mirrored up block, or the mid block (last level).</summary>
    public bool UsesAttention(int block) =>
        DownBlockTypes[block] == CrossAttnDownBlock || UpBlockTypes[BlockCount - 1 - block] == CrossAttnUpBlock || block == BlockCount - 1;

    /// <summary>Channels of the narrowest level with attention: every q/k/v projection there has this many outputs.</summary>
    public int NarrowestAttentionChannels => Enumerable.Range(0, BlockCount).Where(UsesAttention).Min(block => BlockOutChannels[block]);

    /// <summary>Throws <see cref="ArgumentException"/> naming the first inconsistent setting.</summary>
    public UNetConfig Validate()
    {
        var blocks = BlockOutChannels.Count;
        Require(blocks >= 1, "block_out_channels", "must list at least one block");
        Require(BlockOutChannels.All(c => c > 0), "block_out_channels", "must be positive");
        Require(DownBlockTypes.Count == blocks, "down_block_types", $"has {DownBlockTypes.Count} entries but block_out_channels has {blocks}");
        Require(UpBlockTypes.Count == blocks, "up_block_types", $"has {UpBlockTypes.Count} entries but block_out_channels has {blocks}");
        foreach (var type in DownBlockTypes)
            Require(type is CrossAttnDownBlock or PlainDownBlock, "down_block_types", $"'{type}' is not supported (use {CrossAttnDownBlock} or {PlainDownBlock})");
        foreach (var type in UpBlockTypes)
            Require(type is CrossAttnUpBlock or PlainUpBlock, "up_block_types", $"'{type}' is not supported (use {CrossAttnUpBlock} or {PlainUpBlock})");
        Require(MidBlockType == CrossAttnMidBlock, "mid_block_type", $"'{MidBlockType}' is not supported (use {CrossAttnMidBlock})");
        Require(ActFn == "silu", "act_fn", $"'{ActFn}' is not supported (only 'silu')");
        Require(InChannels > 0, "in_channels", "must be positive");
        Require(OutChannels > 0, "out_channels", "must be positive");
        Require(SampleSize > 0, "sample_size", "must be positive");
        Require(LayersPerBlock >= 1, "layers_per_block", "must be at least 1");
        Require(CrossAttentionDim > 0, "cross_attention_dim", "must be positive");
        Require(NormNumGroups > 0, "norm_num_groups", "must be positive");
        Require(NormEps > 0, "norm_eps", "must be positive");
        Require(DownsamplePadding == 1, "downsample_padding", $"{DownsamplePadding} is not supported (only 1)");
        Require(TimestepFeatureDim % 2 == 0, "block_out_channels", $"block_out_channels[0] = {TimestepFeatureDim} must be even (it is the sinusoidal timestep width)");
        Require(TimeEmbedDim > 0, "time_embedding_dim", "must be positive");
        Require(FreqShift < TimestepFeatureDim / 2, "freq_shift", $"must be below half the timestep width ({TimestepFeatureDim / 2})");
        foreach (var channels in BlockOutChannels)
            Require(channels % NormNumGroups == 0, "norm_num_groups", $"{NormNumGroups} groups do not divide {channels} channels");

        RequirePerBlockList(AttentionHeadDim, "attention_head_dim", blocks);
        if (NumAttentionHeads is not null) RequirePerBlockList(NumAttentionHeads, "num_attention_heads", blocks);
        RequirePerBlockList(TransformerLayersPerBlock, "transformer_layers_per_block", blocks);

        var headsKey = NumAttentionHeads is null ? "attention_head_dim" : "num_attention_heads";
        for (var block = 0; block < blocks; block++)
        {
            if (!UsesAttention(block)) continue;
            var heads = HeadsForDownBlock(block);
            Require(BlockOutChannels[block] % heads == 0, headsKey,
                $"{heads} heads do not divide block {block}'s {BlockOutChannels[block]} channels (diffusers reads attention_head_dim as the head count)");
        }
        return this;
    }

    private static void RequirePerBlockList(IReadOnlyList<int> values, string key, int blocks)
    {
        Require(values.Count == 1 || values.Count == blocks, key, $"has {values.Count} entries; give one value or one per block ({blocks})");
        Require(values.All(v => v > 0), key, "must be positive");
    }

    private static void Require(bool condition, string key, string problem)
    {
        if (!condition) throw new ArgumentException($"UNet config '{key}': {problem}.");
    }

    public bool Equals(UNetConfig? other) =>
        other is not null
        && SampleSize == other.SampleSize && InChannels == other.InChannels && OutChannels == other.OutChannels
        && BlockOutChannels.SequenceEqual(other.BlockOutChannels) && LayersPerBlock == other.LayersPerBlock
        && DownBlockTypes.SequenceEqual(other.DownBlockTypes) && MidBlockType == other.MidBlockType
        && UpBlockTypes.SequenceEqual(other.UpBlockTypes) && CrossAttentionDim == other.CrossAttentionDim
        && AttentionHeadDim.SequenceEqual(other.AttentionHeadDim)
        && (NumAttentionHeads ?? []).SequenceEqual(other.NumAttentionHeads ?? []) && (NumAttentionHeads is null) == (other.NumAttentionHeads is null)
        && TransformerLayersPerBlock.SequenceEqual(other.TransformerLayersPerBlock)
        && NormNumGroups == other.NormNumGroups && NormEps == other.NormEps && FlipSinToCos == other.FlipSinToCos
        && FreqShift == other.FreqShift && DownsamplePadding == other.DownsamplePadding && ActFn == other.ActFn
        && UseLinearProjection == other.UseLinearProjection && TimeEmbeddingDim == other.TimeEmbeddingDim;

    public override int GetHashCode() =>
        HashCode.Combine(SampleSize, InChannels, OutChannels, string.Join(",", BlockOutChannels), LayersPerBlock,
            string.Join(",", DownBlockTypes), string.Join(",", UpBlockTypes), CrossAttentionDim);
}
