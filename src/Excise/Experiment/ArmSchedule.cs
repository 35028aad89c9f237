using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;

namespace Excise.Experiment;

/// <summary>
/// How many arms are fine-tuned and evaluated side by side, and with how many libtorch threads each. Every arm draws
/// its randomness from its own seeded generators, so the schedule changes no figure: arms side by side give exactly
/// what they give one after another with the same threads. One at a time is the default because on this project's
/// 2-core machine two one-thread arms were no faster than one two-thread arm (docs/performance.md); a machine with
/// more cores than this small model can use is where side-by-side arms should pay.
/// </summary>
public sealed record ArmSchedule(int Workers, int ThreadsPerArm)
{
    /// <param name="workers">Arms at a time (≥ 1); never more than there are jobs.</param>
    /// <param name="threads">All libtorch threads the experiment may use (0 = one per core), shared out evenly, at least one per arm.</param>
    public static ArmSchedule For(int workers, int threads, int jobs)
    {
        if (workers < 1) throw new ArgumentException($"arm workers must be ≥ 1 (got {workers}).");
        int total = threads > 0 ? threads : Environment.ProcessorCount;
        workers = Math.Max(1, Math.Min(workers, jobs));
        return new ArmSchedule(workers, Math.Max(1, total / workers));
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
