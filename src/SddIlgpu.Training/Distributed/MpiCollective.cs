// One MPI rank of a data-parallel group over MPI_COMM_WORLD. MPI is initialised once per process (it cannot
// be initialised again after MPI_Finalize), so this is a process-wide singleton. A failure anywhere in a
// rank, even an exception on a worker thread, ends the whole job through MPI_Abort, so no rank is left
// waiting in an allreduce for a peer that will never come.
namespace SddIlgpu.Training.Distributed;

/// <summary>This process as one rank of an Open MPI job.</summary>
public sealed unsafe class MpiCollective : ICollective
{
    /// <summary>Open MPI's library name on Debian, Ubuntu and most Linux builds.</summary>
    public const string DefaultLibrary = "libmpi.so.40";

    /// <summary>Largest element count of one MPI call (its count argument is a C int).</summary>
    const int MaxChunk = 1 << 30;

    static MpiCollective? current;
    static readonly Lock Gate = new();

    readonly MpiNative mpi;
    bool finalized;

    MpiCollective(MpiNative mpi, int rank, int size, int localRank)
    {
        this.mpi = mpi;
        Rank = rank;
        Size = size;
        LocalRank = localRank;
    }

    public int Rank { get; }
    public int Size { get; }
    public int LocalRank { get; }

    /// <summary>The MPI thread support level the library granted (MPI_THREAD_FUNNELED = 1 or more).</summary>
    public int ThreadLevel { get; private init; }

    /// <summary>
    /// Loads <paramref name="library"/>, calls MPI_Init_thread and returns this process's rank. Later calls
    /// return the same instance.
    /// </summary>
    /// <exception cref="MpiException">The library cannot be loaded or MPI does not start.</exception>
    public static MpiCollective Initialize(string library, int localRank)
    {
        lock (Gate)
        {
            if (current is not null)
                return current;
            var mpi = MpiNative.Load(library);
            int initialized, provided, rank, size;
            MpiNative.Check(mpi.Initialized(&initialized), "MPI_Initialized");
            if (initialized == 0)
                MpiNative.Check(mpi.InitThread(null, 0, MpiNative.ThreadSerialized, &provided), "MPI_Init_thread");
            else
                provided = MpiNative.ThreadFunneled;
            if (provided < MpiNative.ThreadFunneled)
                throw new MpiException($"Open MPI granted thread level {provided}; sdd needs MPI_THREAD_FUNNELED (1) or more because .NET runs other threads beside the one calling MPI.");
            MpiNative.Check(mpi.CommRank(mpi.CommWorld, &rank), "MPI_Comm_rank");
            MpiNative.Check(mpi.CommSize(mpi.CommWorld, &size), "MPI_Comm_size");
            var world = new MpiCollective(mpi, rank, size, localRank) { ThreadLevel = provided };
            AppDomain.CurrentDomain.UnhandledException += (_, e) =>
            {
                Console.Error.WriteLine($"sdd: rank {world.Rank} of {world.Size} crashed, stopping every rank: {e.ExceptionObject}");
                world.Abort(1);
            };
            return current = world;
        }
    }

    public void AllReduceSum(Span<float> values)
    {
        ThrowIfFinalized();
        for (var start = 0; start < values.Length; start += MaxChunk)
        {
            var chunk = values[start..Math.Min(values.Length, start + MaxChunk)];
            fixed (float* p = chunk)
                MpiNative.Check(mpi.Allreduce(MpiNative.InPlace, p, chunk.Length, mpi.Float, mpi.OpSum, mpi.CommWorld), "MPI_Allreduce");
        }
    }

    public void AllReduceSum(Span<double> values)
    {
        ThrowIfFinalized();
        fixed (double* p = values)
            MpiNative.Check(mpi.Allreduce(MpiNative.InPlace, p, values.Length, mpi.Double, mpi.OpSum, mpi.CommWorld), "MPI_Allreduce");
    }

    public void Broadcast(Span<byte> data, int root = 0)
    {
        ThrowIfFinalized();
        ArgumentOutOfRangeException.ThrowIfNegative(root);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(root, Size);
        fixed (byte* p = data)
            MpiNative.Check(mpi.Bcast(p, data.Length, mpi.Byte, root, mpi.CommWorld), "MPI_Bcast");
    }

    public void Barrier()
    {
        ThrowIfFinalized();
        MpiNative.Check(mpi.Barrier(mpi.CommWorld), "MPI_Barrier");
    }

    /// <summary>MPI_Abort on MPI_COMM_WORLD: mpirun ends every rank and exits with <paramref name="exitCode"/>.</summary>
    public void Abort(int exitCode)
    {
        Console.Out.Flush();
        Console.Error.Flush();
        if (!finalized)
            mpi.Abort(mpi.CommWorld, exitCode);
        Environment.Exit(exitCode);
    }

    void ThrowIfFinalized()
    {
        if (finalized)
            throw new ObjectDisposedException(nameof(MpiCollective), "MPI was finalized; it cannot be used again in this process.");
    }

    /// <summary>MPI_Finalize (once; MPI cannot start again in this process).</summary>
    public void Dispose()
    {
        lock (Gate)
        {
            if (finalized)
                return;
            finalized = true;
            int done;
            if (mpi.Finalized(&done) == 0 && done == 0)
                mpi.Finalize();
        }
    }
}
