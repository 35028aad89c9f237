using static TorchSharp.torch;

namespace Excise.Benchmarking;

/// <summary>The machine's float32 matrix-multiply rate through libtorch: the ceiling model FLOPs are compared against.</summary>
public sealed record MatmulPeakResult(int Size, int Threads, TimingSummary Time, double Gflops);

public static class MatmulPeak
{
    /// <summary>Times <paramref name="repeats"/> products of two n×n float32 matrices (2n³ FLOPs each) after one warm-up.</summary>
    public static MatmulPeakResult Measure(int size = 2048, int repeats = 7)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var generator = new Generator(0, CPU);
        var a = randn([size, size], generator: generator);
        var b = randn([size, size], generator: generator);
        Multiply(a, b);
        var time = TimingSummary.Measure(repeats, () => Multiply(a, b));
        double flops = 2.0 * size * size * size;
        return new MatmulPeakResult(size, get_num_threads(), time, flops / time.MedianSeconds / 1e9);
    }

    static void Multiply(Tensor a, Tensor b)
    {
        using var _ = NewDisposeScope();
        a.matmul(b);
    }
}
