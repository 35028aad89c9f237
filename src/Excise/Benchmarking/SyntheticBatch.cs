using Excise.Models;
using Excise.Serialization;
using TorchSharp;
using static TorchSharp.torch;

namespace Excise.Benchmarking;

/// <summary>
/// One training batch of the model's shapes drawn from a seeded generator: noisy images, timesteps, text states with
/// a padding mask (each row keeps a random number of leading tokens, like real captions), and the noise to predict.
/// Saved under the names the PyTorch reference (bench/reference) reads, so both frameworks see identical inputs.
/// </summary>
public sealed class SyntheticBatch : IDisposable
{
    public Tensor Sample { get; }
    public Tensor Timesteps { get; }
    public Tensor TextStates { get; }
    public Tensor TextMask { get; }
    public Tensor Target { get; }

    public SyntheticBatch(UNetConfig config, int batch, int tokens, long seed, Device? device = null)
    {
        if (batch < 1 || tokens < 1) throw new ArgumentException($"batch and tokens must be positive (got {batch}, {tokens}).");
        device ??= CPU;
        var generator = new Generator((ulong)seed, CPU);
        var size = config.SampleSize;
        Sample = randn([batch, config.InChannels, size, size], generator: generator).to(device).DetachFromDisposeScope();
        Timesteps = randint(0, 1000, [batch], generator: generator).to(ScalarType.Float32).to(device).DetachFromDisposeScope();
        TextStates = randn([batch, tokens, config.CrossAttentionDim], generator: generator).to(device).DetachFromDisposeScope();
        var kept = randint(Math.Min(4, tokens), tokens + 1, [batch, 1], generator: generator);
        TextMask = arange(tokens).unsqueeze(0).lt(kept).to(ScalarType.Float32).to(device).DetachFromDisposeScope();
        Target = randn([batch, config.InChannels, size, size], generator: generator).to(device).DetachFromDisposeScope();
    }

    public int Batch => (int)Sample.shape[0];

    public void Save(string path) => SafetensorsFile.Save(path, new Dictionary<string, Tensor>
    {
        ["sample"] = Sample, ["timesteps"] = Timesteps, ["encoder_hidden_states"] = TextStates,
        ["encoder_attention_mask"] = TextMask, ["target"] = Target,
    });

    public void Dispose()
    {
        Sample.Dispose(); Timesteps.Dispose(); TextStates.Dispose(); TextMask.Dispose(); Target.Dispose();
    }
}
