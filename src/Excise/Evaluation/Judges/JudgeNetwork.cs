using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Excise.Evaluation.Judges;

/// <summary>Shape of a judge's CNN; stored with its weights so a file rebuilds the exact network.</summary>
/// <param name="Widths">Channels of each conv block; every block halves the resolution (32 → 16 → 8 → 4 for three blocks).</param>
/// <param name="FeatureDimension">Width of the penultimate layer, the features used for Fréchet distances.</param>
public sealed record JudgeArchitecture(IReadOnlyList<int> Widths, int FeatureDimension, double Dropout = 0.2)
{
    /// <summary>Three blocks (16/32/64 channels): ~2.7 MMAC per image; three Fashion-MNIST epochs reach ~91% test accuracy in a few minutes on one CPU thread.</summary>
    public static JudgeArchitecture Default { get; } = new([16, 32, 64], 128);

    public void Validate(string source)
    {
        if (Widths is null || Widths.Count is < 1 or > 5 || Widths.Any(w => w is < 1 or > 1024))
            throw new InvalidDataException($"{source}: judge architecture needs 1–5 conv widths in 1..1024, got [{string.Join(", ", Widths ?? [])}].");
        if (FeatureDimension is < 1 or > 4096)
            throw new InvalidDataException($"{source}: judge feature dimension must be in 1..4096, got {FeatureDimension}.");
        if (double.IsNaN(Dropout) || Dropout is < 0 or >= 1)
            throw new InvalidDataException($"{source}: judge dropout must be in [0, 1), got {Dropout}.");
    }

    public override string ToString() => $"conv[{string.Join(",", Widths)}]-fc{FeatureDimension}";
}

/// <summary>
/// A small CNN on 32×32 grey images in [−1, 1]: conv blocks (conv3×3, BatchNorm, ReLU, max-pool) then a fully connected
/// feature layer and a linear head. One class serves both judges: ten outputs for garments, one logit for the concept.
/// </summary>
internal sealed class JudgeNetwork : nn.Module<Tensor, Tensor>
{
    public const int InputSide = 32;

#pragma warning disable IDE1006 // snake_case: state_dict keys
    private readonly Sequential features;
    private readonly Linear head;
#pragma warning restore IDE1006
    private readonly double dropout;

    public JudgeNetwork(JudgeArchitecture architecture, int outputs) : base(nameof(JudgeNetwork))
    {
        architecture.Validate("JudgeNetwork");
        if (InputSide >> architecture.Widths.Count < 1)
            throw new ArgumentException($"{architecture.Widths.Count} pooling blocks leave nothing of a {InputSide}px image.");
        var layers = new List<(string, nn.Module<Tensor, Tensor>)>();
        int channels = 1;
        for (int i = 0; i < architecture.Widths.Count; i++)
        {
            int width = architecture.Widths[i];
            layers.Add(($"conv{i}", nn.Conv2d(channels, width, 3, padding: 1, bias: false)));
            layers.Add(($"norm{i}", nn.BatchNorm2d(width)));
            layers.Add(($"relu{i}", nn.ReLU()));
            layers.Add(($"pool{i}", nn.MaxPool2d(2)));
            channels = width;
        }
        int side = InputSide >> architecture.Widths.Count;
        layers.Add(("flatten", nn.Flatten()));
        layers.Add(("fc", nn.Linear(channels * side * side, architecture.FeatureDimension)));
        layers.Add(("fc_relu", nn.ReLU()));
        features = nn.Sequential(layers);
        head = nn.Linear(architecture.FeatureDimension, outputs);
        dropout = architecture.Dropout;
        Outputs = outputs;
        RegisterComponents();
    }

    public int Outputs { get; }

    /// <summary>The penultimate layer: [N, FeatureDimension].</summary>
    public Tensor Features(Tensor input) => features.forward(input);

    public override Tensor forward(Tensor input) =>
        head.forward(nn.functional.dropout(features.forward(input), dropout, training));
}
