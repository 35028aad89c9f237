using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Excise.Models.Blocks;

/// <summary>diffusers <c>GEGLU</c>: one linear to 2×inner, split into value and gate, value · gelu(gate) with exact erf GELU.</summary>
internal sealed class Geglu : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // snake_case: state_dict key
    private readonly Linear proj;
#pragma warning restore IDE1006

    public Geglu(int inFeatures, int innerFeatures) : base(nameof(Geglu))
    {
        proj = nn.Linear(inFeatures, innerFeatures * 2);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        var halves = proj.call(input).chunk(2, -1);
        return halves[0] * nn.functional.gelu(halves[1]);
    }
}

/// <summary>diffusers <c>FeedForward</c> (geglu, mult 4): <c>net.0</c> GEGLU, <c>net.1</c> dropout(0), <c>net.2</c> linear.</summary>
internal sealed class FeedForward : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // snake_case: state_dict key
    private readonly ModuleList<nn.Module<Tensor, Tensor>> net;
#pragma warning restore IDE1006

    public FeedForward(int dim, int multiplier = 4) : base(nameof(FeedForward))
    {
        var inner = dim * multiplier;
        net = new ModuleList<nn.Module<Tensor, Tensor>>(new Geglu(dim, inner), nn.Dropout(0.0), nn.Linear(inner, dim));
        RegisterComponents();
    }

    public override Tensor forward(Tensor input) => net[2].call(net[0].call(input));
}
