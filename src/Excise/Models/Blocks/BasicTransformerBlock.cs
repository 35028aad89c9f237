using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Excise.Models.Blocks;

/// <summary>diffusers <c>BasicTransformerBlock</c> (layer_norm, geglu): self-attention, cross-attention, feed-forward, each pre-norm and residual.</summary>
internal sealed class BasicTransformerBlock : nn.Module
{
    private const double LayerNormEps = 1e-5;
#pragma warning disable IDE1006 // snake_case: these names become the state_dict keys
    private readonly LayerNorm norm1;
    private readonly Attention attn1;
    private readonly LayerNorm norm2;
    private readonly Attention attn2;
    private readonly LayerNorm norm3;
    private readonly FeedForward ff;
#pragma warning restore IDE1006

    public BasicTransformerBlock(int dim, int heads, int headDim, int crossAttentionDim) : base(nameof(BasicTransformerBlock))
    {
        norm1 = Norms.Layer(dim, LayerNormEps);
        attn1 = new Attention(dim, dim, heads, headDim);
        norm2 = Norms.Layer(dim, LayerNormEps);
        attn2 = new Attention(dim, crossAttentionDim, heads, headDim);
        norm3 = Norms.Layer(dim, LayerNormEps);
        ff = new FeedForward(dim);
        RegisterComponents();
    }

    public Tensor Forward(Tensor hidden, Tensor context, Tensor? contextMask)
    {
        hidden = attn1.Forward(norm1.call(hidden), null, null) + hidden;
        hidden = attn2.Forward(norm2.call(hidden), context, contextMask) + hidden;
        return ff.call(norm3.call(hidden)) + hidden;
    }
}
