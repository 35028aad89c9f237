using System.Runtime.InteropServices;

namespace Excise.Distributed;

/// <summary>
/// The few calls of Open MPI's C library that data-parallel training needs, bound directly (P/Invoke). The NuGet binding
/// MPI.NET 1.4.0 cannot be used: it imports "msmpi.dll" and hard-codes MS-MPI's integer handles (MPI_COMM_WORLD =
/// 0x44000000), while Open MPI's handles are the addresses of exported globals (docs/distributed.md has the measurement).
/// [DllImport] binds lazily, so libmpi is loaded only by the first call, i.e. only under mpirun.
/// </summary>
static class OpenMpi
{
    const string Library = "libmpi.so.40";
    /// <summary>Set by Open MPI's launcher in every process it starts.</summary>
    public const string WorldSizeVariable = "OMPI_COMM_WORLD_SIZE";
    /// <summary>MPI_THREAD_SERIALIZED: the training loop may call MPI from a worker thread, one call at a time.</summary>
    public const int ThreadSerialized = 2;
    /// <summary>MPI_IN_PLACE in Open MPI's mpi.h: ((void *) 1).</summary>
    public static readonly nint InPlace = 1;
    public const int Success = 0;

    static readonly Lazy<nint> Handle = new(() => NativeLibrary.Load(Library));

    /// <summary>An Open MPI handle (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM…): the address of the global the C macros name.</summary>
    public static nint Global(string symbol) => NativeLibrary.GetExport(Handle.Value, symbol);

    [DllImport(Library, EntryPoint = "MPI_Init_thread")]
    public static extern int InitThread(nint argc, nint argv, int required, out int provided);

    [DllImport(Library, EntryPoint = "MPI_Finalize")]
    public static extern int FinalizeMpi();

    [DllImport(Library, EntryPoint = "MPI_Comm_rank")]
    public static extern int CommRank(nint comm, out int rank);

    [DllImport(Library, EntryPoint = "MPI_Comm_size")]
    public static extern int CommSize(nint comm, out int size);

    [DllImport(Library, EntryPoint = "MPI_Allreduce")]
    public static extern int AllreduceFloat(nint sendBuffer, [In, Out] float[] receiveBuffer, int count, nint datatype, nint op, nint comm);

    [DllImport(Library, EntryPoint = "MPI_Allreduce")]
    public static extern int AllreduceDouble(nint sendBuffer, [In, Out] double[] receiveBuffer, int count, nint datatype, nint op, nint comm);

    [DllImport(Library, EntryPoint = "MPI_Barrier")]
    public static extern int Barrier(nint comm);

    [DllImport(Library, EntryPoint = "MPI_Ibarrier")]
    public static extern int Ibarrier(nint comm, out nint request);

    /// <summary>MPI_Test with MPI_STATUS_IGNORE (Open MPI's mpi.h: a null pointer); frees the request once it is complete.</summary>
    [DllImport(Library, EntryPoint = "MPI_Test")]
    public static extern int Test(ref nint request, out int completed, nint status);

    [DllImport(Library, EntryPoint = "MPI_Abort")]
    public static extern int Abort(nint comm, int errorCode);
}

/// <summary>The ranks of an mpirun job (MPI_COMM_WORLD). Every MPI error is fatal (Open MPI's default handler), so the calls return only on success.</summary>
public sealed class OpenMpiProcessGroup : ProcessGroup
{
    readonly nint world = OpenMpi.Global("ompi_mpi_comm_world");
    readonly nint floatType = OpenMpi.Global("ompi_mpi_float");
    readonly nint doubleType = OpenMpi.Global("ompi_mpi_double");
    readonly nint sum = OpenMpi.Global("ompi_mpi_op_sum");
    readonly int rank, size;
    bool finalized;

    OpenMpiProcessGroup()
    {
        Check(OpenMpi.InitThread(0, 0, OpenMpi.ThreadSerialized, out int provided), "MPI_Init_thread");
        if (provided < OpenMpi.ThreadSerialized)
            throw new NotSupportedException($"Open MPI provides thread level {provided}; training needs MPI_THREAD_SERIALIZED ({OpenMpi.ThreadSerialized}).");
        Check(OpenMpi.CommRank(world, out rank), "MPI_Comm_rank");
        Check(OpenMpi.CommSize(world, out size), "MPI_Comm_size");
    }

    /// <summary>Initialises MPI; call once per process.</summary>
    public static OpenMpiProcessGroup Start() => new();

    public override int Rank => rank;
    public override int Size => size;

    public override void SumInPlace(float[] values) =>
        Check(OpenMpi.AllreduceFloat(OpenMpi.InPlace, values, values.Length, floatType, sum, world), "MPI_Allreduce");

    public override void SumInPlace(double[] values) =>
        Check(OpenMpi.AllreduceDouble(OpenMpi.InPlace, values, values.Length, doubleType, sum, world), "MPI_Allreduce");

    public override void Barrier() => Check(OpenMpi.Barrier(world), "MPI_Barrier");

    public override void WaitForAll(TimeSpan poll)
    {
        // MPI_Barrier spins at full speed until the last rank arrives (Open MPI's progress engine polls); a rank waiting
        // minutes for another (an experiment's base model) would take a core from it. A non-blocking barrier tested
        // between sleeps costs nothing meanwhile.
        Check(OpenMpi.Ibarrier(world, out nint request), "MPI_Ibarrier");
        while (true)
        {
            Check(OpenMpi.Test(ref request, out int completed, 0), "MPI_Test");
            if (completed != 0) return;
            Thread.Sleep(poll);
        }
    }

    public override void Abort(int exitCode)
    {
        Console.Out.Flush();
        Console.Error.Flush();
        OpenMpi.Abort(world, exitCode);
        Environment.Exit(exitCode); // not reached: MPI_Abort ends this process too
    }

    static void Check(int code, string call)
    {
        if (code != OpenMpi.Success) throw new InvalidOperationException($"{call} failed with MPI error code {code}.");
    }

    protected override void Dispose(bool disposing)
    {
        if (finalized) return;
        finalized = true;
        // Collective: returns when every rank has finalized, so a rank that finished early waits here for rank 0's writes.
        Check(OpenMpi.FinalizeMpi(), "MPI_Finalize");
    }
}
