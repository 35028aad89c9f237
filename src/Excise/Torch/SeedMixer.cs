namespace Excise.Torch;

/// <summary>
/// Derives independent, reproducible seeds from (seed, stream, index) with SplitMix64. Unlike
/// <see cref="HashCode"/>, the result is the same in every process, which resumable runs depend on.
/// </summary>
public static class SeedMixer
{
    public static ulong Mix(ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }

    public static ulong Derive(long seed, long stream, long index) =>
        Mix(Mix(Mix((ulong)seed) ^ (ulong)stream) ^ (ulong)index);

    /// <summary>A non-negative 31-bit seed for <see cref="Random"/>.</summary>
    public static int DeriveInt(long seed, long stream, long index) => (int)(Derive(seed, stream, index) & 0x7FFFFFFF);
}
