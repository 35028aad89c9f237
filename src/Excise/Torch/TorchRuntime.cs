using TorchSharp;

namespace Excise.Torch;

/// <summary>Process-wide TorchSharp settings: threads, device, seeds.</summary>
public static class TorchRuntime
{
    public static torch.Device ParseDevice(string name) => name.Trim().ToLowerInvariant() switch
    {
        "cpu" => torch.CPU,
        var cuda when cuda.StartsWith("cuda") => new torch.Device(cuda),
        _ => throw new ArgumentException($"Unknown device '{name}'. Use 'cpu' or 'cuda[:N]' (CUDA needs TorchSharp's libtorch-cuda package instead of libtorch-cpu)."),
    };

    /// <summary>Sets libtorch's intra-op threads; 0 means one per core.</summary>
    public static void ConfigureThreads(int threads)
    {
        int n = threads > 0 ? threads : Environment.ProcessorCount;
        if (torch.get_num_threads() != n) torch.set_num_threads(n);
    }

    public static void Seed(long seed) => torch.manual_seed(seed);
}
