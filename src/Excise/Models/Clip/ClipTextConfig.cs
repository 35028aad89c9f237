using System.Text.Json;

namespace Excise.Models.Clip;

/// <summary>The MLP activation of a CLIP text encoder (transformers' <c>hidden_act</c>).</summary>
public enum ClipActivation
{
    /// <summary><c>quick_gelu</c>: x·sigmoid(1.702·x) (OpenAI CLIP, Stable Diffusion 1.x).</summary>
    QuickGelu,

    /// <summary><c>gelu</c>: the exact erf GELU (OpenCLIP ViT-H, Stable Diffusion 2.x).</summary>
    Gelu,
}

/// <summary>
/// transformers' <c>CLIPTextConfig</c>, the keys <c>CLIPTextModel</c>'s forward pass depends on. Defaults are
/// transformers' (4.46) except where noted; <see cref="EosTokenId"/> 2 selects the legacy pooling rule (argmax of the ids).
/// </summary>
public sealed record ClipTextConfig
{
    public const string ModelType = "clip_text_model";

    /// <summary>The activations read from <c>hidden_act</c>, by their transformers spelling.</summary>
    private static readonly Dictionary<string, ClipActivation> Activations = new(StringComparer.Ordinal)
    {
        ["quick_gelu"] = ClipActivation.QuickGelu,
        ["gelu"] = ClipActivation.Gelu,
    };

    public int VocabSize { get; init; } = 49408;
    public int HiddenSize { get; init; } = 512;
    public int IntermediateSize { get; init; } = 2048;
    public int NumHiddenLayers { get; init; } = 12;
    public int NumAttentionHeads { get; init; } = 8;
    public int MaxPositionEmbeddings { get; init; } = 77;
    public double LayerNormEps { get; init; } = 1e-5;
    public ClipActivation HiddenAct { get; init; } = ClipActivation.QuickGelu;
    public int EosTokenId { get; init; } = 2;

    public int HeadDim => HiddenSize / NumAttentionHeads;

    /// <summary>Checks sizes and returns this config; <see cref="ArgumentException"/> names the bad key.</summary>
    internal ClipTextConfig Validate()
    {
        void Positive(int value, string key)
        {
            if (value <= 0) throw new ArgumentException($"CLIP text config '{key}' must be positive; got {value}.");
        }
        Positive(VocabSize, "vocab_size");
        Positive(HiddenSize, "hidden_size");
        Positive(IntermediateSize, "intermediate_size");
        Positive(NumHiddenLayers, "num_hidden_layers");
        Positive(NumAttentionHeads, "num_attention_heads");
        Positive(MaxPositionEmbeddings, "max_position_embeddings");
        if (HiddenSize % NumAttentionHeads != 0)
            throw new ArgumentException($"CLIP text config 'hidden_size' ({HiddenSize}) must be divisible by 'num_attention_heads' ({NumAttentionHeads}).");
        if (!(LayerNormEps > 0) || double.IsInfinity(LayerNormEps))
            throw new ArgumentException($"CLIP text config 'layer_norm_eps' must be a positive finite number; got {LayerNormEps}.");
        return this;
    }

    /// <summary>
    /// Reads a transformers <c>config.json</c> of a <c>CLIPTextModel</c> (a Stable Diffusion pipeline's
    /// <c>text_encoder/config.json</c>), or the golden files' wrapper that holds it under <c>"config"</c>. Unknown keys
    /// are ignored; a <c>model_type</c> other than <c>clip_text_model</c> or a <c>hidden_act</c> this class does not build
    /// is refused with <see cref="NotSupportedException"/> naming the key; malformed values give <see cref="InvalidDataException"/>.
    /// </summary>
    public static ClipTextConfig FromTransformersJson(string text)
    {
        using (var json = new HuggingFaceConfigJson(text, "CLIP text config"))
        {
            var root = json.Root;
            if (root.TryGetProperty("model_type", out var modelType)
                && (modelType.ValueKind != JsonValueKind.String || modelType.GetString() != ModelType))
                throw new NotSupportedException(
                    $"CLIP text config 'model_type': {modelType.GetRawText()} is not supported (only \"{ModelType}\"; a full \"clip\" config holds it under 'text_config').");

            var activation = ClipActivation.QuickGelu;
            if (root.TryGetProperty("hidden_act", out var act))
            {
                if (act.ValueKind != JsonValueKind.String || !Activations.TryGetValue(act.GetString()!, out activation))
                    throw new NotSupportedException(
                        $"CLIP text config 'hidden_act': {act.GetRawText()} is not supported (only {string.Join(", ", Activations.Keys.Select(k => $"\"{k}\""))}).");
            }

            var defaults = new ClipTextConfig();
            var config = new ClipTextConfig
            {
                VocabSize = json.ReadInt("vocab_size") ?? defaults.VocabSize,
                HiddenSize = json.ReadInt("hidden_size") ?? defaults.HiddenSize,
                IntermediateSize = json.ReadInt("intermediate_size") ?? defaults.IntermediateSize,
                NumHiddenLayers = json.ReadInt("num_hidden_layers") ?? defaults.NumHiddenLayers,
                NumAttentionHeads = json.ReadInt("num_attention_heads") ?? defaults.NumAttentionHeads,
                MaxPositionEmbeddings = json.ReadInt("max_position_embeddings") ?? defaults.MaxPositionEmbeddings,
                LayerNormEps = json.ReadDouble("layer_norm_eps") ?? defaults.LayerNormEps,
                HiddenAct = activation,
                EosTokenId = json.ReadInt("eos_token_id") ?? defaults.EosTokenId,
            };
            try { return config.Validate(); }
            catch (ArgumentException e) { throw new InvalidDataException(e.Message, e); }
        }
    }
}
