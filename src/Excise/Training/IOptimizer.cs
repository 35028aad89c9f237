using Excise.Serialization;
using static TorchSharp.torch;

namespace Excise.Training;

/// <summary>An optimizer whose state is plain named tensors, so checkpoints are safetensors and hooks see every step.</summary>
public interface IOptimizer : IDisposable
{
    long StepCount { get; }
    void ZeroGrad();
    void Step(double learningRate);
    IEnumerable<KeyValuePair<string, Tensor>> StateTensors();
    void LoadState(SafetensorsContents contents, long stepCount, string source);
}

public enum OptimizerKind { Adamw, Sgd }
