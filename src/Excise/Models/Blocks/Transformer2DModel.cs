using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Excise.Models.Blocks;

/// <summary>diffusers <c>Transformer2DModel</c> for continuous inputs: GroupNorm (eps 1e-6), proj_in
/// (1×1 conv, or linear with use_linear_projection), transformer blocks over H·W tokens, proj_out, residual.</summary>
internal sealed class Transformer2DModel : nn.Module
{
    private const double GroupNormEps = 1e-6;
#pragma warning disable IDE1006 // snake_case: these names become the state_dict keys
    private readonly GroupNorm norm;
    private readonly nn.Module<Tensor, Tensor> proj_in;
    private readonly ModuleList<BasicTransformerBlock> transformer_blocks;
    private readonly nn.Module<Tensor, Tensor> proj_out;
#pragma warning restore IDE1006
    private readonly bool linearProjection;

    public Transformer2DModel(int channels, int heads, int layers, int groups, int crossAttentionDim, bool linearProjection)
        : base(nameof(Transformer2DModel))
    {
        norm = Norms.Group(groups, channels, GroupNormEps);
        proj_in = linearProjection ? nn.Linear(channels, channels) : nn.Conv2d(channels, channels, 1);
        transformer_blocks = new ModuleList<BasicTransformerBlock>(
            Enumerable.Range(0, layers).Select(_ => new BasicTransformerBlock(channels, heads, channels / heads, crossAttentionDim)).ToArray());
        proj_out = linearProjection ? nn.Linear(channels, channels) : nn.Conv2d(channels, channels, 1);
        this.linearProjection = linearProjection;
        RegisterComponents();
    }

    public Tensor Forward(Tensor input, Tensor context, Tensor? contextMask)
    {
        var (batch, channels, height, width) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3]);
        var hidden = norm.call(input);
        hidden = linearProjection
            ? proj_in.call(ToTokens(hidden, batch, channels, height, width))
            : ToTokens(proj_in.call(hidden), batch, channels, height, width);
        foreach (var block in transformer_blocks) hidden = block.Forward(hidden, context, contextMask);
        hidden = linearProjection
            ? FromTokens(proj_out.call(hidden), batch, channels, height, width)
            : proj_out.call(FromTokens(hidden, batch, channels, height, width));
        return hidden + input;
    }

    private static Tensor ToTokens(Tensor x, long batch, long channels, long height, long width) =>
        x.permute(0, 2, 3, 1).reshape(batch, height * width, channels);

    private static Tensor FromTokens(Tensor x, long batch, long channels, long height, long width) =>
        x.reshape(batch, height, width, channels).permute(0, 3, 1, 2).contiguous();
}
