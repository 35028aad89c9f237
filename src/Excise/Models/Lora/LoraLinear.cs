using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Excise.Models.Lora;

/// <summary>
/// A linear layer with a low-rank update: y = x·Wᵀ (+ b) + (α/r)·(x·Aᵀ)·Bᵀ, A [r, in], B [out, r].
/// The base weight keeps the state-dict name <c>weight</c> (and <c>bias</c>), so a base checkpoint still loads
/// strictly into the adapted model; the adapter lives in <c>lora_A.weight</c> and <c>lora_B.weight</c>, the names
/// PEFT and diffusers use. A starts Kaiming-uniform (as PEFT), B at zero, so a fresh adapter changes nothing.
/// Because A is the only factor that reads the input, keeping A's rows orthogonal to a subspace keeps the
/// whole update ΔW = (α/r)·B·A blind to that subspace whatever B becomes.
/// </summary>
public sealed class LoraLinear : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // snake_case: these names become the state_dict keys
    private readonly Parameter weight;
    private readonly Parameter? bias;
    private readonly Linear lora_A;
    private readonly Linear lora_B;
#pragma warning restore IDE1006
    // The layer this one replaced; handed back by Merge so the merged model holds its original modules.
    // Deliberately not registered as a component (it would add a second copy of the weight to the state dict).
    private readonly Linear original;

    /// <summary>Wraps <paramref name="original"/>, sharing (not copying) its weight and bias.</summary>
    /// <param name="seed">Seeds A's initialisation (a private generator; libtorch's global one is untouched).</param>
    public LoraLinear(Linear original, int rank, double alpha, ulong seed) : base(nameof(LoraLinear))
    {
        ArgumentNullException.ThrowIfNull(original);
        this.original = original;
        weight = original.weight ?? throw new ArgumentException("The layer to adapt has no weight.", nameof(original));
        bias = original.bias;
        var (outFeatures, inFeatures) = (weight.shape[0], weight.shape[1]);
        if (rank < 1 || rank > Math.Min(inFeatures, outFeatures))
            throw new ArgumentOutOfRangeException(nameof(rank), rank, $"LoRA rank must be between 1 and {Math.Min(inFeatures, outFeatures)} for a [{outFeatures}, {inFeatures}] weight.");
        if (!double.IsFinite(alpha) || alpha <= 0) throw new ArgumentOutOfRangeException(nameof(alpha), alpha, "LoRA alpha must be a finite positive number.");
        Rank = rank;
        Alpha = alpha;
        using (var generator = new Generator(seed))
            lora_A = Factor(KaimingUniform(rank, inFeatures, generator).to(weight.dtype, weight.device));
        lora_B = Factor(zeros(outFeatures, rank, dtype: weight.dtype, device: weight.device));
        register_parameter(nameof(weight), weight);
        if (bias is not null) register_parameter(nameof(bias), bias);
        register_module(nameof(lora_A), lora_A);
        register_module(nameof(lora_B), lora_B);
    }

    public int Rank { get; }
    public double Alpha { get; }
    public double Scale => Alpha / Rank;
    public long InFeatures => weight.shape[1];
    public long OutFeatures => weight.shape[0];

    /// <summary>True once <see cref="Lora.Merge"/> has folded this adapter into its base weight and removed it from the model.</summary>
    public bool IsMerged { get; private set; }

    public Parameter BaseWeight => weight;
    /// <summary>A [r, in], the factor that reads the input.</summary>
    public Parameter A => lora_A.weight;
    /// <summary>B [out, r].</summary>
    public Parameter B => lora_B.weight;

    public override Tensor forward(Tensor input)
    {
        var result = nn.functional.linear(input, weight, bias);
        var update = lora_B.call(lora_A.call(input));
        return result.add_(update, alpha: Scale);
    }

    /// <summary>(α/r)·B·A, computed in float64 so measurements such as ‖ΔW·U‖ are not limited by float32 rounding.</summary>
    public Tensor DeltaWeight()
    {
        ThrowIfMerged();
        using var _ = no_grad();
        return B.detach().to(ScalarType.Float64).matmul(A.detach().to(ScalarType.Float64)).mul_(Scale);
    }

    /// <summary>W + (α/r)·B·A in the weight's dtype (one rounding), without changing anything.</summary>
    public Tensor MergedWeight()
    {
        using var scope = NewDisposeScope();
        var delta = DeltaWeight();
        using var _ = no_grad();
        return weight.detach().to(ScalarType.Float64).add_(delta).to(weight.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>Folds the update into the base weight and returns the original Linear (sharing that weight) to put back.</summary>
    internal Linear MergeIntoBase()
    {
        using (var scope = NewDisposeScope())
        {
            var merged = MergedWeight();
            using var _ = no_grad();
            weight.copy_(merged);
        }
        IsMerged = true;
        // A device move after injection replaces Parameters; give the original layer the current ones.
        if (!ReferenceEquals(original.weight, weight)) original.weight = weight;
        if (bias is not null && !ReferenceEquals(original.bias, bias)) original.bias = bias;
        return original;
    }

    // Components are registered explicitly above; reflection would also register `original`.
    protected override void RegisterComponents() { }

    private void ThrowIfMerged()
    {
        if (IsMerged) throw new InvalidOperationException("This LoRA adapter was merged into its base weight and is no longer part of the model.");
    }

    /// <summary>A bias-free Linear holding <paramref name="value"/>. Built on the meta device first so the
    /// throw-away default initialisation neither allocates nor draws from libtorch's global generator.</summary>
    private static Linear Factor(Tensor value)
    {
        var layer = nn.Linear(value.shape[1], value.shape[0], hasBias: false, device: META);
        layer.weight = new Parameter(value, requires_grad: true);
        return layer;
    }

    /// <summary>PEFT's init for A: kaiming_uniform_(a=√5) over fan_in, i.e. U(−1/√in, 1/√in).</summary>
    private static Tensor KaimingUniform(long rows, long fanIn, Generator generator)
    {
        var bound = 1.0 / Math.Sqrt(fanIn);
        return rand(new[] { rows, fanIn }, generator: generator).mul_(2 * bound).sub_(bound);
    }
}
