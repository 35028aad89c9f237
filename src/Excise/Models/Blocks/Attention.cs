using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Excise.Models.Blocks;

/// <summary>diffusers <c>Attention</c> as used by <c>BasicTransformerBlock</c>: bias-free q/k/v,
/// <c>to_out.0</c> linear with bias (<c>to_out.1</c> is a parameterless dropout(0)), softmax(scale·q·kᵀ + mask)·v.</summary>
internal sealed class Attention : nn.Module
{
#pragma warning disable IDE1006 // snake_case: these names become the state_dict keys
    // Not readonly and typed as any Tensor→Tensor module so LoRA can swap a projection in place (ReplaceProjection).
    private nn.Module<Tensor, Tensor> to_q;
    private nn.Module<Tensor, Tensor> to_k;
    private nn.Module<Tensor, Tensor> to_v;
    private readonly ModuleList<nn.Module<Tensor, Tensor>> to_out;
#pragma warning restore IDE1006
    private readonly int heads;

    public Attention(int queryDim, int contextDim, int heads, int headDim) : base(nameof(Attention))
    {
        var inner = heads * headDim;
        to_q = nn.Linear(queryDim, inner, hasBias: false);
        to_k = nn.Linear(contextDim, inner, hasBias: false);
        to_v = nn.Linear(contextDim, inner, hasBias: false);
        to_out = new ModuleList<nn.Module<Tensor, Tensor>>(nn.Linear(inner, queryDim), nn.Dropout(0.0));
        this.heads = heads;
        RegisterComponents();
    }

    /// <param name="hidden">[B, N, C] query tokens.</param>
    /// <param name="context">[B, T, Cc] key/value tokens; null for self-attention.</param>
    /// <param name="additiveMask">null, or [B, 1, 1, T] bias added to the scores (0 keep, −10000 drop).</param>
    public Tensor Forward(Tensor hidden, Tensor? context, Tensor? additiveMask)
    {
        context ??= hidden;
        var q = SplitHeads(to_q.call(hidden));
        var k = SplitHeads(to_k.call(context));
        var v = SplitHeads(to_v.call(context));
        // SDPA's default scale is headDim^-0.5, as diffusers. Its fused CPU kernel never materialises the
        // [B, heads, N, N] score matrix, which at 32×32 tokens and batch 32 is 1 GiB per layer and made
        // training ~5× slower; parity with the golden data stays within float32 noise (checked by the tests).
        var attended = nn.functional.scaled_dot_product_attention(q, k, v, additiveMask);
        var (batch, tokens) = (hidden.shape[0], hidden.shape[1]);
        var merged = attended.transpose(1, 2).reshape(batch, tokens, -1);
        return to_out[0].call(merged);
    }

    /// <summary>The projections that may be swapped, by state-dict name.</summary>
    internal static IReadOnlyList<string> ProjectionNames { get; } = ["to_q", "to_k", "to_v"];

    internal nn.Module<Tensor, Tensor> Projection(string name) => name switch
    {
        "to_q" => to_q,
        "to_k" => to_k,
        "to_v" => to_v,
        _ => throw new ArgumentException($"Attention has no swappable projection '{name}'; it has {string.Join(", ", ProjectionNames)}.", nameof(name)),
    };

    /// <summary>Swaps a q/k/v projection for another module (a LoRA wrapper, or the plain Linear back) under the same
    /// name. The registry entry is overwritten in place, so state-dict order and names stay those of the base model.</summary>
    internal void ReplaceProjection(string name, nn.Module<Tensor, Tensor> replacement)
    {
        ArgumentNullException.ThrowIfNull(replacement);
        _ = Projection(name);
        switch (name)
        {
            case "to_q": to_q = replacement; break;
            case "to_k": to_k = replacement; break;
            default: to_v = replacement; break;
        }
        replacement.train(training);
        _internal_submodules[name] = replacement;
    }

    private Tensor SplitHeads(Tensor x) => x.view(x.shape[0], x.shape[1], heads, -1).transpose(1, 2);
}
