namespace Excise.Benchmarking;

/// <summary>Median, min and max of repeated timings in seconds. Medians, because the machine is shared and noisy.</summary>
public sealed record TimingSummary(double MedianSeconds, double MinSeconds, double MaxSeconds, int Count)
{
    public static TimingSummary Of(IReadOnlyCollection<double> seconds)
    {
        if (seconds.Count == 0) throw new ArgumentException("No timings to summarise.", nameof(seconds));
        var sorted = seconds.Order().ToArray();
        int n = sorted.Length;
        double median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
        return new TimingSummary(median, sorted[0], sorted[^1], n);
    }

    /// <summary>Runs <paramref name="action"/> <paramref name="repeats"/> times and summarises the wall-clock times.</summary>
    public static TimingSummary Measure(int repeats, Action action)
    {
        var times = new List<double>(repeats);
        for (int i = 0; i < repeats; i++)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            action();
            times.Add(clock.Elapsed.TotalSeconds);
        }
        return Of(times);
    }
}

/// <summary>Resident memory of this process, from /proc on Linux (the .NET figures elsewhere).</summary>
public static class ProcessMemory
{
    public static double ResidentMegabytes() => ReadStatusKilobytes("VmRSS:") is { } kb ? kb / 1024.0 : Environment.WorkingSet / (1024.0 * 1024.0);

    public static double PeakResidentMegabytes() =>
        ReadStatusKilobytes("VmHWM:") is { } kb ? kb / 1024.0 : System.Diagnostics.Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024.0);

    /// <summary>
    /// Resets the peak that <see cref="PeakResidentMegabytes"/> reads to the current resident memory (Linux: writing 5 to
    /// /proc/self/clear_refs), so a measurement's peak is its own; false where that is not possible.
    /// </summary>
    public static bool ResetPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException) { return false; }
    }

    /// <summary>
    /// Hands memory the process freed back to the system (glibc's malloc_trim), so that the resident figure after a large
    /// model is disposed is what is still in use and the next measurement's baseline is not inflated by a free list.
    /// Elsewhere it does nothing.
    /// </summary>
    public static void ReleaseFreedMemory()
    {
        if (!OperatingSystem.IsLinux()) return;
        try { MallocTrim(0); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { } // not glibc (musl): nothing to trim
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);

    static long? ReadStatusKilobytes(string field)
    {
        const string status = "/proc/self/status";
        if (!File.Exists(status)) return null;
        foreach (var line in File.ReadLines(status))
            if (line.StartsWith(field, StringComparison.Ordinal)
                && long.TryParse(line[field.Length..].Trim().Split(' ')[0], out var kb))
                return kb;
        return null;
    }
}
