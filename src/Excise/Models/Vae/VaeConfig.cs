using System.Text.Json;

namespace Excise.Models.Vae;

/// <summary>
/// diffusers' <c>AutoencoderKL</c> config (v0.31), the keys its forward pass depends on. Defaults are diffusers' own, so a
/// <c>vae/config.json</c> that omits a key means the same thing here (a missing <c>scaling_factor</c> is 0.18215).
/// </summary>
public sealed record VaeConfig
{
    public const string DownEncoderBlock = "DownEncoderBlock2D";
    public const string UpDecoderBlock = "UpDecoderBlock2D";
    private const string DiffusersClassName = "AutoencoderKL";

    /// <summary>
    /// Keys Excise reads but only builds at one value. <c>shift_factor</c> and <c>latents_mean</c>/<c>latents_std</c> are
    /// not used by the model itself, but pipelines (SD3, Flux, SDXL variants) apply them around it; accepting them
    /// silently would let a later pipeline scale latents by <see cref="ScalingFactor"/> alone and get them wrong.
    /// </summary>
    private static readonly (string Key, string Expected, Func<JsonElement, bool> IsSupported)[] FixedKeys =
    [
        ("shift_factor", "null or 0", e => e.ValueKind == JsonValueKind.Null || (e.ValueKind == JsonValueKind.Number && e.GetDouble() == 0)),
        ("latents_mean", "null", e => e.ValueKind == JsonValueKind.Null),
        ("latents_std", "null", e => e.ValueKind == JsonValueKind.Null),
    ];

    public int InChannels { get; init; } = 3;
    public int OutChannels { get; init; } = 3;
    public IReadOnlyList<string> DownBlockTypes { get; init; } = [DownEncoderBlock];
    public IReadOnlyList<string> UpBlockTypes { get; init; } = [UpDecoderBlock];
    public IReadOnlyList<int> BlockOutChannels { get; init; } = [64];
    public int LayersPerBlock { get; init; } = 1;
    public string ActFn { get; init; } = "silu";
    public int LatentChannels { get; init; } = 4;
    public int NormNumGroups { get; init; } = 32;
    public int SampleSize { get; init; } = 32;

    /// <summary>Pipelines multiply encoded latents by this and divide by it before decoding; the model never applies it.</summary>
    public double ScalingFactor { get; init; } = 0.18215;

    public bool UseQuantConv { get; init; } = true;
    public bool UsePostQuantConv { get; init; } = true;
    public bool MidBlockAddAttention { get; init; } = true;

    public int BlockCount => BlockOutChannels.Count;

    /// <summary>How much smaller the latents are than the image per side: 2^(blocks − 1), diffusers' <c>vae_scale_factor</c>.</summary>
    public int DownsamplingFactor => 1 << (BlockCount - 1);

    /// <summary>Throws <see cref="ArgumentException"/> naming the first inconsistent key; returns this config.</summary>
    public VaeConfig Validate()
    {
        var blocks = BlockOutChannels.Count;
        Require(blocks >= 1, "block_out_channels", "must list at least one block");
        Require(BlockOutChannels.All(c => c > 0), "block_out_channels", "must be positive");
        Require(DownBlockTypes.Count == blocks, "down_block_types", $"has {DownBlockTypes.Count} entries but block_out_channels has {blocks}");
        Require(UpBlockTypes.Count == blocks, "up_block_types", $"has {UpBlockTypes.Count} entries but block_out_channels has {blocks}");
        foreach (var type in DownBlockTypes)
            Require(type == DownEncoderBlock, "down_block_types", $"'{type}' is not supported (only {DownEncoderBlock})");
        foreach (var type in UpBlockTypes)
            Require(type == UpDecoderBlock, "up_block_types", $"'{type}' is not supported (only {UpDecoderBlock})");
        Require(ActFn == "silu", "act_fn", $"'{ActFn}' is not supported (only 'silu')");
        Require(InChannels > 0, "in_channels", "must be positive");
        Require(OutChannels > 0, "out_channels", "must be positive");
        Require(LatentChannels > 0, "latent_channels", "must be positive");
        Require(LayersPerBlock >= 1, "layers_per_block", "must be at least 1");
        Require(SampleSize > 0, "sample_size", "must be positive");
        Require(NormNumGroups > 0, "norm_num_groups", "must be positive");
        foreach (var channels in BlockOutChannels)
            Require(channels % NormNumGroups == 0, "norm_num_groups", $"{NormNumGroups} groups do not divide {channels} channels");
        Require(double.IsFinite(ScalingFactor) && ScalingFactor > 0, "scaling_factor", $"must be a positive finite number; got {ScalingFactor}");
        return this;
    }

    /// <summary>
    /// Reads a diffusers <c>vae/config.json</c>, or the golden files' wrapper that holds it under <c>"config"</c>. Unknown
    /// keys are ignored (<c>force_upcast</c> only concerns half precision); a <c>_class_name</c> other than AutoencoderKL,
    /// a block type, activation or latent shift Excise does not build is refused with <see cref="NotSupportedException"/>
    /// naming the key; malformed values give <see cref="InvalidDataException"/>.
    /// </summary>
    public static VaeConfig FromDiffusersJson(string text)
    {
        using (var json = new HuggingFaceConfigJson(text, "VAE config"))
        {
            json.RequireClassName(DiffusersClassName);
            json.RefuseUnsupported(FixedKeys);

            var defaults = new VaeConfig();
            var config = new VaeConfig
            {
                InChannels = json.ReadInt("in_channels") ?? defaults.InChannels,
                OutChannels = json.ReadInt("out_channels") ?? defaults.OutChannels,
                DownBlockTypes = json.ReadStringList("down_block_types") ?? defaults.DownBlockTypes,
                UpBlockTypes = json.ReadStringList("up_block_types") ?? defaults.UpBlockTypes,
                BlockOutChannels = json.ReadIntList("block_out_channels") ?? defaults.BlockOutChannels,
                LayersPerBlock = json.ReadInt("layers_per_block") ?? defaults.LayersPerBlock,
                ActFn = json.ReadString("act_fn") ?? defaults.ActFn,
                LatentChannels = json.ReadInt("latent_channels") ?? defaults.LatentChannels,
                NormNumGroups = json.ReadInt("norm_num_groups") ?? defaults.NormNumGroups,
                SampleSize = json.ReadInt("sample_size") ?? defaults.SampleSize,
                ScalingFactor = json.ReadDouble("scaling_factor") ?? defaults.ScalingFactor,
                UseQuantConv = json.ReadBool("use_quant_conv") ?? defaults.UseQuantConv,
                UsePostQuantConv = json.ReadBool("use_post_quant_conv") ?? defaults.UsePostQuantConv,
                MidBlockAddAttention = json.ReadBool("mid_block_add_attention") ?? defaults.MidBlockAddAttention,
            };
            try { return config.Validate(); }
            catch (ArgumentException e) { throw new NotSupportedException(e.Message, e); }
        }
    }

    private static void Require(bool condition, string key, string problem)
    {
        if (!condition) throw new ArgumentException($"VAE config '{key}': {problem}.");
    }
}
