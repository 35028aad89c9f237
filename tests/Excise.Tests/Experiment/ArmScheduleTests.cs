using Excise.Experiment;

namespace Excise.Tests.Experiment;

public sealed class ArmScheduleTests
{
    [Theory]
    [InlineData(1, 2, 6, 1, 2)]
    [InlineData(2, 2, 6, 2, 1)]
    [InlineData(4, 8, 6, 4, 2)]
    [InlineData(4, 2, 3, 3, 1)] // never more workers than jobs, never less than one thread each
    [InlineData(2, 1, 6, 2, 1)]
    public void Shares_the_threads_out_among_the_arms(int workers, int threads, int jobs, int expectedWorkers, int expectedThreads)
    {
        var schedule = ArmSchedule.For(workers, threads, jobs);
        Assert.Equal(expectedWorkers, schedule.Workers);
        Assert.Equal(expectedThreads, schedule.ThreadsPerArm);
    }

    [Fact]
    public void Refuses_zero_workers() => Assert.Throws<ArgumentException>(() => ArmSchedule.For(0, 2, 6));

    [Fact]
    public void Returns_results_in_job_order_from_dedicated_threads()
    {
        var threads = new System.Collections.Concurrent.ConcurrentBag<int>();
        var results = new ArmSchedule(3, 1).Run(10, (i, _) =>
        {
            threads.Add(Environment.CurrentManagedThreadId);
            Thread.Sleep(10 * (i % 3));
            return i * i;
        }, CancellationToken.None);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => i * i), results);
        Assert.DoesNotContain(Environment.CurrentManagedThreadId, threads);
    }

    [Fact]
    public void First_failure_stops_the_other_jobs_and_is_rethrown()
    {
        int started = 0;
        var error = Assert.Throws<InvalidOperationException>(() => new ArmSchedule(2, 1).Run(20, (i, token) =>
        {
            Interlocked.Increment(ref started);
            if (i == 1) throw new InvalidOperationException("arm 1 failed");
            token.WaitHandle.WaitOne(TimeSpan.FromSeconds(10)); // a long arm that notices cancellation
            token.ThrowIfCancellationRequested();
            return i;
        }, CancellationToken.None));
        Assert.Equal("arm 1 failed", error.Message);
        // Two workers: the job that failed and the one running beside it. A worker that took another job after the
        // failure (a loop that does not check for it, or a failure that cancels nothing) makes it more.
        Assert.Equal(2, started);
    }
}
