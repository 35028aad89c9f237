using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;

namespace Excise.Experiment;

/// <summary>
/// How many arms are fine-tuned and evaluated side by side, and with how many libtorch threads each. On a small CPU
/// two one-thread arms do more work per second than one two-thread arm (this model's layers are too narrow for the
/// second thread to pay off fully: docs/performance.md), and every arm's random draws come from its own seeded
/// generators, so running arms together changes no figure beyond the float rounding that the thread count sets.
/// </summary>
public sealed record ArmSchedule(int Workers, int ThreadsPerArm)
{
    /// <summary>More side-by-side arms than this only adds memory: each holds its data, model and optimizer.</summary>
    public const int MaxAutomaticWorkers = 4;

    /// <summary>What one arm of the default experiment holds at its peak (measured: 2.1 GiB), with headroom.</summary>
    public const long BytesPerArm = 3L << 30;

    /// <param name="requestedWorkers">0 chooses: one arm per core up to <see cref="MaxAutomaticWorkers"/>, as memory allows, one on a GPU.</param>
    /// <param name="threads">All libtorch threads the experiment may use; 0 means one per core.</param>
    public static ArmSchedule For(int requestedWorkers, int threads, int jobs, bool onCpu, long availableBytes)
    {
        if (requestedWorkers < 0) throw new ArgumentException($"arm workers must be ≥ 0 (got {requestedWorkers}).");
        int total = threads > 0 ? threads : Environment.ProcessorCount;
        int workers = requestedWorkers > 0
            ? requestedWorkers
            : onCpu ? Math.Min(Math.Min(total, MaxAutomaticWorkers), (int)Math.Max(1, availableBytes / BytesPerArm)) : 1;
        workers = Math.Max(1, Math.Min(workers, jobs));
        return new ArmSchedule(workers, workers == 1 ? total : Math.Max(1, total / workers));
    }

    /// <summary>
    /// Runs <paramref name="count"/> jobs on <see cref="Workers"/> dedicated threads (libtorch's thread count is per
    /// thread, so pool threads would carry it to unrelated work) and returns their results in job order. The first
    /// failure cancels the jobs still running and is rethrown once they have stopped.
    /// </summary>
    public T[] Run<T>(int count, Func<int, CancellationToken, T> job, CancellationToken cancel)
    {
        var results = new T[count];
        if (Workers == 1)
        {
            for (int i = 0; i < count; i++) results[i] = job(i, cancel);
            return results;
        }
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var failures = new ConcurrentQueue<ExceptionDispatchInfo>();
        int next = -1;
        var threads = Enumerable.Range(0, Workers).Select(w => new Thread(() =>
        {
            try
            {
                for (int i = Interlocked.Increment(ref next); i < count && !stop.IsCancellationRequested; i = Interlocked.Increment(ref next))
                    results[i] = job(i, stop.Token);
            }
            catch (Exception e)
            {
                failures.Enqueue(ExceptionDispatchInfo.Capture(e));
                stop.Cancel();
            }
        }, maxStackSize: 16 << 20) { Name = $"excise-arm-{w}", IsBackground = true }).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        (failures.FirstOrDefault(f => f.SourceException is not OperationCanceledException) ?? failures.FirstOrDefault())?.Throw();
        cancel.ThrowIfCancellationRequested();
        return results;
    }
}
