using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Excise.Models.Blocks;

/// <summary>diffusers <c>Attention</c> as used by <c>BasicTransformerBlock</c>: bias-free q/k/v,
/// <c>to_out.0</c> linear with bias (<c>to_out.1</c> is a parameterless dropout(0)), softmax(scale·q·kᵀ + mask)·v.</summary>
internal sealed class Attention : nn.Module
{
#pragma warning disable IDE1006 // snake_case: these names become the state_dict keys
    private readonly Linear to_q;
    private readonly Linear to_k;
    private readonly Linear to_v;
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
        var q = SplitHeads(to_q.forward(hidden));
        var k = SplitHeads(to_k.forward(context));
        var v = SplitHeads(to_v.forward(context));
        // SDPA's default scale is headDim^-0.5, as diffusers. Its fused CPU kernel never materialises the
        // [B, heads, N, N] score matrix, which at 32×32 tokens and batch 32 is 1 GiB per layer and made
        // training ~5× slower; parity with the golden data stays within float32 noise (checked by the tests).
        var attended = nn.functional.scaled_dot_product_attention(q, k, v, additiveMask);
        var (batch, tokens) = (hidden.shape[0], hidden.shape[1]);
        var merged = attended.transpose(1, 2).reshape(batch, tokens, -1);
        return to_out[0].forward(merged);
    }

    private Tensor SplitHeads(Tensor x) => x.view(x.shape[0], x.shape[1], heads, -1).transpose(1, 2);
}
