namespace Excise.Distributed;

/// <summary>
/// The processes that train one model together (data parallelism): each knows its rank and how many there are, and
/// they can sum numbers across all of them and wait for each other. One process alone is a group of one, where every
/// operation is the identity, so code written for a group runs unchanged without MPI.
/// </summary>
public abstract class ProcessGroup : IDisposable
{
    /// <summary>This process's index, 0 … Size−1; rank 0 alone writes the run's files.</summary>
    public abstract int Rank { get; }
    public abstract int Size { get; }
    public bool IsRoot => Rank == 0;

    /// <summary>Replaces every element by its sum over all ranks; every rank receives the same sums.</summary>
    public abstract void SumInPlace(float[] values);

    /// <inheritdoc cref="SumInPlace(float[])"/>
    public abstract void SumInPlace(double[] values);

    /// <summary>Returns once every rank has called it.</summary>
    public abstract void Barrier();

    /// <summary>
    /// A barrier for long waits: returns once every rank has called it, checking every <paramref name="poll"/> and
    /// sleeping in between, so a rank that waits minutes for another leaves the CPU to it.
    /// </summary>
    public abstract void WaitForAll(TimeSpan poll);

    /// <summary>
    /// Ends every rank of the job with <paramref name="exitCode"/> and does not return: after an error on one rank the
    /// others would wait for it forever in their next collective call, so the whole job is taken down instead.
    /// </summary>
    public abstract void Abort(int exitCode);

    /// <summary>The sum of one number over all ranks.</summary>
    public double Sum(double value)
    {
        var buffer = new[] { value };
        SumInPlace(buffer);
        return buffer[0];
    }

    /// <summary>
    /// The MPI group when this process was started by Open MPI's mpirun (it sets OMPI_COMM_WORLD_SIZE), else a group of
    /// one. Outside mpirun the MPI library is not even loaded, so machines without Open MPI run as before.
    /// </summary>
    public static ProcessGroup FromEnvironment() =>
        int.TryParse(Environment.GetEnvironmentVariable(OpenMpi.WorldSizeVariable), out var size) && size > 1
            ? OpenMpiProcessGroup.Start()
            : new SingleProcessGroup();

    /// <summary>
    /// Stops every rank with <see cref="ReplicaMismatchException"/> unless all hold the same <paramref name="digest"/> of
    /// <paramref name="what"/> (e.g. the weights after a step). Collective: every rank must call it at the same point.
    /// </summary>
    public void RequireSameOnEveryRank(ulong digest, string what)
    {
        var digests = Gather(digest);
        var differing = Enumerable.Range(1, Size - 1).Where(r => digests[r] != digests[0]).ToList();
        if (differing.Count > 0)
            throw new ReplicaMismatchException($"The ranks no longer hold the same {what}: rank{(differing.Count > 1 ? "s" : "")} " +
                $"{string.Join(", ", differing)} differ{(differing.Count > 1 ? "" : "s")} from rank 0 (digests {string.Join(", ", digests.Select(d => d.ToString("x16")))}). " +
                "Data-parallel training requires identical replicas; the job stops rather than train diverging copies.");
    }

    /// <summary>Every rank's value of <paramref name="digest"/>, rank by rank (a sum where each rank fills only its own slot).</summary>
    ulong[] Gather(ulong digest)
    {
        // Two 32-bit halves per rank: each is exact in a double, so the sum of zeros and one half gives it back bit for bit.
        var slots = new double[2 * Size];
        slots[2 * Rank] = digest >> 32;
        slots[2 * Rank + 1] = digest & 0xFFFF_FFFF;
        SumInPlace(slots);
        return Enumerable.Range(0, Size).Select(r => ((ulong)slots[2 * r] << 32) | (ulong)slots[2 * r + 1]).ToArray();
    }

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing) { }
}

/// <summary>The ranks of a data-parallel job hold different weights (or other state that must be identical).</summary>
public sealed class ReplicaMismatchException(string message) : InvalidOperationException(message);

/// <summary>One process training alone: rank 0 of 1; sums are the values themselves.</summary>
public sealed class SingleProcessGroup : ProcessGroup
{
    public override int Rank => 0;
    public override int Size => 1;
    public override void SumInPlace(float[] values) { }
    public override void SumInPlace(double[] values) { }
    public override void Barrier() { }
    public override void WaitForAll(TimeSpan poll) { }
    public override void Abort(int exitCode) => Environment.Exit(exitCode);
}
