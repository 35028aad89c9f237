using System.Text.Json;
using System.Text.Json.Nodes;

namespace Excise.Models;

public sealed partial record UNetConfig
{
    private const string DiffusersClassName = "UNet2DConditionModel";
    private const string DiffusersVersionWritten = "0.31.0";

    /// <summary>Architecture-changing diffusers keys that Excise only builds at their default value.</summary>
    private static readonly (string Key, string Expected, Func<JsonElement, bool> IsDefault)[] FixedKeys =
    [
        ("center_input_sample", "false", IsFalseOrNull),
        ("only_cross_attention", "false", e => IsFalseOrNull(e) || (e.ValueKind == JsonValueKind.Array && e.EnumerateArray().All(IsFalseOrNull))),
        ("mid_block_only_cross_attention", "null or false", IsFalseOrNull),
        ("dual_cross_attention", "false", IsFalseOrNull),
        ("upcast_attention", "false", IsFalseOrNull),
        ("class_embeddings_concat", "false", IsFalseOrNull),
        ("resnet_skip_time_act", "false", IsFalseOrNull),
        ("mid_block_scale_factor", "1", e => IsNumber(e, 1)),
        ("resnet_out_scale_factor", "1", e => IsNumber(e, 1)),
        ("dropout", "0", e => IsNumber(e, 0)),
        ("conv_in_kernel", "3", e => IsNumber(e, 3)),
        ("conv_out_kernel", "3", e => IsNumber(e, 3)),
        ("resnet_time_scale_shift", "\"default\"", e => IsString(e, "default")),
        ("time_embedding_type", "\"positional\"", e => IsString(e, "positional")),
        ("attention_type", "\"default\"", e => IsString(e, "default")),
        ("class_embed_type", "null", IsNull),
        ("num_class_embeds", "null", IsNull),
        ("addition_embed_type", "null", IsNull),
        ("addition_time_embed_dim", "null", IsNull),
        ("projection_class_embeddings_input_dim", "null", IsNull),
        ("encoder_hid_dim", "null", IsNull),
        ("encoder_hid_dim_type", "null", IsNull),
        ("time_embedding_act_fn", "null", IsNull),
        ("timestep_post_act", "null", IsNull),
        ("time_cond_proj_dim", "null", IsNull),
        ("cross_attention_norm", "null", IsNull),
        ("reverse_transformer_layers_per_block", "null", IsNull),
    ];

    /// <summary>
    /// Reads a diffusers <c>config.json</c>, or the golden files' wrapper that holds it under <c>"config"</c>.
    /// Unknown keys are ignored; keys that would change the architecture to something Excise does not build
    /// are refused with <see cref="NotSupportedException"/> naming the key; malformed values give
    /// <see cref="InvalidDataException"/>. The result is validated.
    /// </summary>
    public static UNetConfig FromDiffusersJson(string text)
    {
        using (var json = new HuggingFaceConfigJson(text, "UNet config"))
        {
            var root = json.Root;
            json.RequireClassName(DiffusersClassName);
            json.RefuseUnsupported(FixedKeys);

            var defaults = new UNetConfig();
            var config = new UNetConfig
            {
                SampleSize = json.ReadInt("sample_size") ?? defaults.SampleSize,
                InChannels = json.ReadInt("in_channels") ?? defaults.InChannels,
                OutChannels = json.ReadInt("out_channels") ?? defaults.OutChannels,
                BlockOutChannels = json.ReadIntList("block_out_channels") ?? defaults.BlockOutChannels,
                LayersPerBlock = json.ReadInt("layers_per_block") ?? defaults.LayersPerBlock,
                DownBlockTypes = json.ReadStringList("down_block_types") ?? defaults.DownBlockTypes,
                MidBlockType = json.ReadString("mid_block_type") ?? RefuseExplicitNull(root, "mid_block_type", defaults.MidBlockType),
                UpBlockTypes = json.ReadStringList("up_block_types") ?? defaults.UpBlockTypes,
                CrossAttentionDim = json.ReadInt("cross_attention_dim") ?? defaults.CrossAttentionDim,
                AttentionHeadDim = json.ReadIntOrList("attention_head_dim") ?? defaults.AttentionHeadDim,
                NumAttentionHeads = json.ReadIntOrList("num_attention_heads"),
                TransformerLayersPerBlock = json.ReadIntOrList("transformer_layers_per_block") ?? defaults.TransformerLayersPerBlock,
                NormNumGroups = json.ReadInt("norm_num_groups") ?? RefuseExplicitNull(root, "norm_num_groups", defaults.NormNumGroups),
                NormEps = json.ReadDouble("norm_eps") ?? defaults.NormEps,
                FlipSinToCos = json.ReadBool("flip_sin_to_cos") ?? defaults.FlipSinToCos,
                FreqShift = json.ReadInt("freq_shift") ?? defaults.FreqShift,
                DownsamplePadding = json.ReadInt("downsample_padding") ?? defaults.DownsamplePadding,
                ActFn = json.ReadString("act_fn") ?? defaults.ActFn,
                UseLinearProjection = json.ReadBool("use_linear_projection") ?? defaults.UseLinearProjection,
                TimeEmbeddingDim = json.ReadInt("time_embedding_dim"),
            };

            try { return config.Validate(); }
            catch (ArgumentException e) { throw new NotSupportedException(e.Message, e); }
        }
    }

    /// <summary>Writes a complete diffusers config (every key diffusers 0.31 knows), loadable by
    /// <c>UNet2DConditionModel.from_config</c> into the same architecture.</summary>
    public string ToDiffusersJson()
    {
        var node = new JsonObject
        {
            ["_class_name"] = DiffusersClassName,
            ["_diffusers_version"] = DiffusersVersionWritten,
            ["sample_size"] = SampleSize,
            ["in_channels"] = InChannels,
            ["out_channels"] = OutChannels,
            ["center_input_sample"] = false,
            ["flip_sin_to_cos"] = FlipSinToCos,
            ["freq_shift"] = FreqShift,
            ["down_block_types"] = ToArray(DownBlockTypes),
            ["mid_block_type"] = MidBlockType,
            ["up_block_types"] = ToArray(UpBlockTypes),
            ["only_cross_attention"] = false,
            ["block_out_channels"] = ToArray(BlockOutChannels),
            ["layers_per_block"] = LayersPerBlock,
            ["downsample_padding"] = DownsamplePadding,
            ["mid_block_scale_factor"] = 1,
            ["dropout"] = 0.0,
            ["act_fn"] = ActFn,
            ["norm_num_groups"] = NormNumGroups,
            ["norm_eps"] = NormEps,
            ["cross_attention_dim"] = CrossAttentionDim,
            ["transformer_layers_per_block"] = IntOrArray(TransformerLayersPerBlock),
            ["reverse_transformer_layers_per_block"] = null,
            ["encoder_hid_dim"] = null,
            ["encoder_hid_dim_type"] = null,
            ["attention_head_dim"] = IntOrArray(AttentionHeadDim),
            ["num_attention_heads"] = NumAttentionHeads is null ? null : IntOrArray(NumAttentionHeads),
            ["dual_cross_attention"] = false,
            ["use_linear_projection"] = UseLinearProjection,
            ["class_embed_type"] = null,
            ["addition_embed_type"] = null,
            ["addition_time_embed_dim"] = null,
            ["num_class_embeds"] = null,
            ["upcast_attention"] = false,
            ["resnet_time_scale_shift"] = "default",
            ["resnet_skip_time_act"] = false,
            ["resnet_out_scale_factor"] = 1.0,
            ["time_embedding_type"] = "positional",
            ["time_embedding_dim"] = TimeEmbeddingDim,
            ["time_embedding_act_fn"] = null,
            ["timestep_post_act"] = null,
            ["time_cond_proj_dim"] = null,
            ["conv_in_kernel"] = 3,
            ["conv_out_kernel"] = 3,
            ["projection_class_embeddings_input_dim"] = null,
            ["attention_type"] = "default",
            ["class_embeddings_concat"] = false,
            ["mid_block_only_cross_attention"] = null,
            ["cross_attention_norm"] = null,
            ["addition_embed_type_num_heads"] = 64,
        };
        return node.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    private static JsonArray ToArray<T>(IEnumerable<T> values) => new(values.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray());

    private static JsonNode IntOrArray(IReadOnlyList<int> values) =>
        values.Distinct().Count() == 1 ? JsonValue.Create(values[0]) : ToArray(values);

    /// <summary>An absent key takes diffusers' default; an explicit null would remove the part (no mid block,
    /// no group norm), which Excise does not build.</summary>
    private static T RefuseExplicitNull<T>(JsonElement root, string key, T defaultValue) =>
        root.TryGetProperty(key, out _)
            ? throw new NotSupportedException($"UNet config '{key}': null is not supported (Excise always builds this part).")
            : defaultValue;

    private static bool IsNull(JsonElement e) => e.ValueKind == JsonValueKind.Null;
    private static bool IsFalseOrNull(JsonElement e) => e.ValueKind is JsonValueKind.False or JsonValueKind.Null;
    private static bool IsNumber(JsonElement e, double expected) => e.ValueKind == JsonValueKind.Number && e.GetDouble() == expected;
    private static bool IsString(JsonElement e, string expected) => e.ValueKind == JsonValueKind.String && e.GetString() == expected;
}
