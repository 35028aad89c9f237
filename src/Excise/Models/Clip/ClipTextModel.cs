using Excise.Models.Blocks;
using Excise.Serialization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Excise.Models.Clip;

/// <summary>The outputs of <see cref="ClipTextModel.Forward"/>: [B, T, D] and [B, D].</summary>
public sealed record ClipTextOutput(Tensor LastHiddenState, Tensor PoolerOutput);

/// <summary>
/// transformers' <c>CLIPTextModel</c> (4.46 semantics, eager attention) in TorchSharp, with Hugging Face's parameter
/// names (<c>text_model.embeddings.token_embedding.weight</c>, …) so a Stable Diffusion <c>text_encoder/</c> loads by
/// name. Token + position embeddings; pre-LN encoder layers (causal self-attention, plus the padding mask when one is
/// given, as transformers adds it; MLP with quick-GELU or GELU); final LayerNorm; pooled output at the end token.
/// </summary>
public sealed class ClipTextModel : nn.Module
{
    /// <summary>Older transformers versions saved this non-persistent buffer; it is the arange the model builds itself.</summary>
    private const string LegacyPositionIdsName = "text_model.embeddings.position_ids";

#pragma warning disable IDE1006 // snake_case: these names become the state_dict keys
    private readonly ClipTextTransformer text_model;
#pragma warning restore IDE1006

    public ClipTextModel(ClipTextConfig config) : base(nameof(ClipTextModel))
    {
        Config = config.Validate();
        text_model = new ClipTextTransformer(config);
        RegisterComponents();
    }

    public ClipTextConfig Config { get; }

    /// <summary>
    /// Loads weights by Hugging Face name through the validating reader, strictly: a missing, unexpected or misshapen
    /// tensor is an <see cref="InvalidDataException"/> naming it. The legacy <c>position_ids</c> buffer is ignored.
    /// </summary>
    public void LoadSafetensors(string path)
    {
        Digest.VerifyPin(path);
        using var contents = SafetensorsFile.Load(path, name => name != LegacyPositionIdsName);
        ModuleWeights.Load(this, contents.Tensors, path, strict: true);
    }

    /// <summary>
    /// Encodes token ids [B, T] (integer, T ≤ max_position_embeddings). <paramref name="attentionMask"/> [B, T]
    /// (1 keep, 0 padding) is optional: Stable Diffusion pipelines pass none, so padded positions attend to everything
    /// before them. <paramref name="observer"/> receives transformers' <c>hidden_states.i</c> (the embeddings, then each
    /// layer's output before the final LayerNorm) and each layer's <c>…self_attn</c> and <c>…mlp</c> output before
    /// its residual add, under the module names of the golden data.
    /// </summary>
    /// <remarks>Intermediates land in the caller's dispose scope.</remarks>
    public ClipTextOutput Forward(Tensor inputIds, Tensor? attentionMask = null, Action<string, Tensor>? observer = null)
    {
        CheckInputs(inputIds, attentionMask);
        return text_model.Forward(inputIds, attentionMask, observer);
    }

    private void CheckInputs(Tensor inputIds, Tensor? attentionMask)
    {
        if (inputIds.dim() != 2 || inputIds.shape[1] > Config.MaxPositionEmbeddings || inputIds.shape[1] == 0)
            throw new ArgumentException($"inputIds must be [B, T] with 1 ≤ T ≤ {Config.MaxPositionEmbeddings}; got [{string.Join(", ", inputIds.shape)}].", nameof(inputIds));
        if (inputIds.dtype is not (ScalarType.Int64 or ScalarType.Int32))
            throw new ArgumentException($"inputIds must be an integer tensor; got {inputIds.dtype}.", nameof(inputIds));
        var (low, high) = (inputIds.min().ToInt64(), inputIds.max().ToInt64());
        if (low < 0 || high >= Config.VocabSize)
            throw new ArgumentException($"inputIds must lie in [0, {Config.VocabSize}); got values from {low} to {high}.", nameof(inputIds));
        if (attentionMask is not null && !attentionMask.shape.SequenceEqual(inputIds.shape))
            throw new ArgumentException($"attentionMask must have the shape of inputIds [{string.Join(", ", inputIds.shape)}]; got [{string.Join(", ", attentionMask.shape)}].", nameof(attentionMask));
    }
}

/// <summary>transformers' <c>CLIPTextTransformer</c>: embeddings, encoder, final LayerNorm, pooler.</summary>
internal sealed class ClipTextTransformer : nn.Module
{
#pragma warning disable IDE1006
    private readonly ClipTextEmbeddings embeddings;
    private readonly ClipEncoder encoder;
    private readonly LayerNorm final_layer_norm;
#pragma warning restore IDE1006
    private readonly int eosTokenId;

    public ClipTextTransformer(ClipTextConfig config) : base(nameof(ClipTextTransformer))
    {
        embeddings = new ClipTextEmbeddings(config);
        encoder = new ClipEncoder(config);
        final_layer_norm = Norms.Layer(config.HiddenSize, config.LayerNormEps);
        eosTokenId = config.EosTokenId;
        RegisterComponents();
    }

    public ClipTextOutput Forward(Tensor inputIds, Tensor? attentionMask, Action<string, Tensor>? observer)
    {
        var ids = inputIds.to_type(ScalarType.Int64);
        var hidden = embeddings.Forward(ids);
        var (batch, tokens) = (ids.shape[0], ids.shape[1]);
        var min = (double)float.MinValue;
        // transformers' _create_4d_causal_attention_mask: finfo.min where the key lies after the query.
        var causal = full(tokens, tokens, min, dtype: hidden.dtype, device: hidden.device).triu_(1).view(1, 1, tokens, tokens);
        // transformers' _prepare_4d_attention_mask: finfo.min at padded keys, added on top of the causal mask.
        var padding = attentionMask is null
            ? null
            : (1 - attentionMask.to_type(hidden.dtype)).mul_(min).view(batch, 1, 1, tokens);
        hidden = encoder.Forward(hidden, causal, padding, observer);
        var last = final_layer_norm.call(hidden);

        // transformers 4.46: eos_token_id 2 (legacy configs) pools at argmax(ids), i.e. the highest id; otherwise at the
        // FIRST position holding eos_token_id (argmax returns the first maximum).
        var position = eosTokenId == 2 ? ids.argmax(-1) : ids.eq(eosTokenId).to_type(ScalarType.Int32).argmax(-1);
        var pooled = last[arange(batch, device: last.device), position];
        return new ClipTextOutput(last, pooled);
    }
}

/// <summary>transformers' <c>CLIPTextEmbeddings</c>: token embedding plus position embedding at 0…T−1.</summary>
internal sealed class ClipTextEmbeddings : nn.Module
{
#pragma warning disable IDE1006
    private readonly Embedding token_embedding;
    private readonly Embedding position_embedding;
#pragma warning restore IDE1006

    public ClipTextEmbeddings(ClipTextConfig config) : base(nameof(ClipTextEmbeddings))
    {
        token_embedding = nn.Embedding(config.VocabSize, config.HiddenSize);
        position_embedding = nn.Embedding(config.MaxPositionEmbeddings, config.HiddenSize);
        using (no_grad())
        {
            // transformers' CLIPPreTrainedModel._init_weights (initializer_factor 1).
            nn.init.normal_(token_embedding.weight!, 0, 0.02);
            nn.init.normal_(position_embedding.weight!, 0, 0.02);
        }
        RegisterComponents();
    }

    public Tensor Forward(Tensor ids)
    {
        var positions = arange(ids.shape[1], dtype: ScalarType.Int64, device: ids.device).unsqueeze(0);
        return token_embedding.call(ids) + position_embedding.call(positions);
    }
}

internal sealed class ClipEncoder : nn.Module
{
#pragma warning disable IDE1006
    private readonly ModuleList<ClipEncoderLayer> layers;
#pragma warning restore IDE1006

    public ClipEncoder(ClipTextConfig config) : base(nameof(ClipEncoder))
    {
        layers = new ModuleList<ClipEncoderLayer>(Enumerable.Range(0, config.NumHiddenLayers).Select(_ => new ClipEncoderLayer(config)).ToArray());
        RegisterComponents();
    }

    public Tensor Forward(Tensor hidden, Tensor causalMask, Tensor? paddingMask, Action<string, Tensor>? observer)
    {
        observer?.Invoke("hidden_states.0", hidden);
        for (var i = 0; i < layers.Count; i++)
        {
            hidden = layers[i].Forward(hidden, causalMask, paddingMask, observer, $"text_model.encoder.layers.{i}");
            observer?.Invoke($"hidden_states.{i + 1}", hidden);
        }
        return hidden;
    }
}

/// <summary>Pre-LN: h += self_attn(layer_norm1(h)); h += mlp(layer_norm2(h)).</summary>
internal sealed class ClipEncoderLayer : nn.Module
{
#pragma warning disable IDE1006
    private readonly ClipAttention self_attn;
    private readonly LayerNorm layer_norm1;
    private readonly ClipMlp mlp;
    private readonly LayerNorm layer_norm2;
#pragma warning restore IDE1006

    public ClipEncoderLayer(ClipTextConfig config) : base(nameof(ClipEncoderLayer))
    {
        self_attn = new ClipAttention(config);
        layer_norm1 = Norms.Layer(config.HiddenSize, config.LayerNormEps);
        mlp = new ClipMlp(config);
        layer_norm2 = Norms.Layer(config.HiddenSize, config.LayerNormEps);
        RegisterComponents();
    }

    public Tensor Forward(Tensor hidden, Tensor causalMask, Tensor? paddingMask, Action<string, Tensor>? observer, string name)
    {
        var attended = self_attn.Forward(layer_norm1.call(hidden), causalMask, paddingMask);
        observer?.Invoke($"{name}.self_attn", attended);
        hidden = hidden + attended;
        var mixed = mlp.Forward(layer_norm2.call(hidden));
        observer?.Invoke($"{name}.mlp", mixed);
        return hidden + mixed;
    }
}

/// <summary>transformers' eager <c>CLIPAttention</c>: q/k/v/out Linear with bias, q scaled by head_dim^-0.5 after its
/// bias, scores + causal mask (+ padding mask), float softmax over keys, heads merged in channel order.</summary>
internal sealed class ClipAttention : nn.Module
{
#pragma warning disable IDE1006 // declared in transformers' order (k, v, q, out), which is its state_dict order
    private readonly Linear k_proj;
    private readonly Linear v_proj;
    private readonly Linear q_proj;
    private readonly Linear out_proj;
#pragma warning restore IDE1006
    private readonly int heads;
    private readonly double scale;

    public ClipAttention(ClipTextConfig config) : base(nameof(ClipAttention))
    {
        var width = config.HiddenSize;
        k_proj = nn.Linear(width, width);
        v_proj = nn.Linear(width, width);
        q_proj = nn.Linear(width, width);
        out_proj = nn.Linear(width, width);
        heads = config.NumAttentionHeads;
        scale = Math.Pow(config.HeadDim, -0.5);
        var inProjStd = Math.Pow(width, -0.5) * Math.Pow(2 * config.NumHiddenLayers, -0.5);
        var outProjStd = Math.Pow(width, -0.5);
        using (no_grad())
        {
            // transformers' _init_weights for the weights; the biases, which it leaves at PyTorch's default, start at zero.
            foreach (var projection in new[] { k_proj, v_proj, q_proj })
            {
                nn.init.normal_(projection.weight!, 0, inProjStd);
                nn.init.zeros_(projection.bias!);
            }
            nn.init.normal_(out_proj.weight!, 0, outProjStd);
            nn.init.zeros_(out_proj.bias!);
        }
        RegisterComponents();
    }

    public Tensor Forward(Tensor hidden, Tensor causalMask, Tensor? paddingMask)
    {
        var (batch, tokens) = (hidden.shape[0], hidden.shape[1]);
        var q = SplitHeads(q_proj.call(hidden) * scale, batch, tokens);
        var k = SplitHeads(k_proj.call(hidden), batch, tokens);
        var v = SplitHeads(v_proj.call(hidden), batch, tokens);
        var scores = q.matmul(k.transpose(-1, -2)) + causalMask;
        if (paddingMask is not null) scores = scores + paddingMask;
        var attended = scores.softmax(-1).matmul(v);
        return out_proj.call(attended.transpose(1, 2).reshape(batch, tokens, -1));
    }

    private Tensor SplitHeads(Tensor x, long batch, long tokens) => x.view(batch, tokens, heads, -1).transpose(1, 2);
}

/// <summary>fc1, activation (quick-GELU or erf GELU), fc2.</summary>
internal sealed class ClipMlp : nn.Module
{
#pragma warning disable IDE1006
    private readonly Linear fc1;
    private readonly Linear fc2;
#pragma warning restore IDE1006
    private readonly ClipActivation activation;

    public ClipMlp(ClipTextConfig config) : base(nameof(ClipMlp))
    {
        fc1 = nn.Linear(config.HiddenSize, config.IntermediateSize);
        fc2 = nn.Linear(config.IntermediateSize, config.HiddenSize);
        activation = config.HiddenAct;
        using (no_grad())
        {
            nn.init.normal_(fc1.weight!, 0, Math.Pow(2 * config.HiddenSize, -0.5));
            nn.init.normal_(fc2.weight!, 0, Math.Pow(config.HiddenSize, -0.5) * Math.Pow(2 * config.NumHiddenLayers, -0.5));
            nn.init.zeros_(fc1.bias!);
            nn.init.zeros_(fc2.bias!);
        }
        RegisterComponents();
    }

    public Tensor Forward(Tensor hidden)
    {
        var x = fc1.call(hidden);
        x = activation switch
        {
            ClipActivation.QuickGelu => x * (x * 1.702).sigmoid(),
            ClipActivation.Gelu => nn.functional.gelu(x),
            _ => throw new NotSupportedException($"CLIP activation {activation} is not built."),
        };
        return fc2.call(x);
    }
}
