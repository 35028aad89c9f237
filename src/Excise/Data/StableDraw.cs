using System.Text;

namespace Excise.Data;

/// <summary>
/// Random draws that depend only on (seed, example id, purpose): an example gets the same caption, stamp decision and
/// placement whatever subset or order it is loaded in. SplitMix64 finalisers over an FNV-1a hash of the id.
/// </summary>
public static class StableDraw
{
    public static ulong Hash(long seed, string key, string purpose)
    {
        ulong h = 14695981039346656037UL;
        foreach (var b in Encoding.UTF8.GetBytes(purpose + "\u0001" + key))
        {
            h ^= b;
            h *= 1099511628211UL;
        }
        return Mix(Mix(h) ^ (ulong)seed);
    }

    /// <summary>Uniform in [0, 1).</summary>
    public static double Unit(long seed, string key, string purpose) => (Hash(seed, key, purpose) >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform integer in [0, count).</summary>
    public static int Below(long seed, string key, string purpose, int count)
    {
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count), $"count must be positive, got {count}.");
        return (int)(Unit(seed, key, purpose) * count);
    }

    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
