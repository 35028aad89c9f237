using TorchSharp;

namespace Excise.Torch;

/// <summary>Process-wide TorchSharp settings: native load check, threads, device, seeds.</summary>
public static class TorchRuntime
{
    public static torch.Device ParseDevice(string name) => name.Trim().ToLowerInvariant() switch
    {
        "cpu" => torch.CPU,
        var cuda when cuda.StartsWith("cuda") => new torch.Device(cuda),
        _ => throw new ArgumentException($"Unknown device '{name}'. Use 'cpu' or 'cuda[:N]' (CUDA needs TorchSharp's libtorch-cuda package).")
    };

    public static void Seed(long seed) => torch.manual_seed(seed);
}
