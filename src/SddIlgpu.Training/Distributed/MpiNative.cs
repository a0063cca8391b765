// A thin binding to Open MPI's C library (libmpi.so.40): the dozen calls data parallelism needs, called
// through function pointers looked up once. Open MPI's predefined handles (MPI_COMM_WORLD, MPI_FLOAT,
// MPI_SUM, ...) are the addresses of exported globals (ompi_mpi_comm_world, ompi_mpi_float,
// ompi_mpi_op_sum; see Open MPI's mpi.h), and MPI_IN_PLACE is the constant (void*)1. MPI.NET's NuGet
// package targets Microsoft MPI on Windows, hence this binding. Only Open MPI's ABI is supported (MPICH's
// handles are integers, not pointers).
using System.Runtime.InteropServices;

namespace SddIlgpu.Training.Distributed;

/// <summary>MPI could not be loaded, started or used; the message says what to do.</summary>
public sealed class MpiException(string message, Exception? inner = null) : Exception(message, inner);

internal sealed unsafe class MpiNative
{
    /// <summary>MPI_THREAD_SERIALIZED: any thread may call MPI, one at a time (the trainer calls from one).</summary>
    public const int ThreadSerialized = 2;

    /// <summary>MPI_THREAD_FUNNELED: only the thread that initialised MPI calls it; enough for the trainer.</summary>
    public const int ThreadFunneled = 1;

    public static readonly nint InPlace = 1;

    readonly nint library;
    public readonly string Path;
    public readonly nint CommWorld, Float, Double, Byte, OpSum;
    public readonly delegate* unmanaged<int*, int> Initialized, Finalized;
    public readonly delegate* unmanaged<int*, nint, int, int*, int> InitThread;
    public readonly delegate* unmanaged<int> Finalize;
    public readonly delegate* unmanaged<nint, int*, int> CommRank, CommSize;
    public readonly delegate* unmanaged<nint, void*, int, nint, nint, nint, int> Allreduce;
    public readonly delegate* unmanaged<void*, int, nint, int, nint, int> Bcast;
    public readonly delegate* unmanaged<nint, int> Barrier;
    public readonly delegate* unmanaged<nint, int, int> Abort;

    MpiNative(nint library, string path)
    {
        this.library = library;
        Path = path;
        CommWorld = Export("ompi_mpi_comm_world");
        Float = Export("ompi_mpi_float");
        Double = Export("ompi_mpi_double");
        Byte = Export("ompi_mpi_byte");
        OpSum = Export("ompi_mpi_op_sum");
        Initialized = (delegate* unmanaged<int*, int>)Export("MPI_Initialized");
        Finalized = (delegate* unmanaged<int*, int>)Export("MPI_Finalized");
        InitThread = (delegate* unmanaged<int*, nint, int, int*, int>)Export("MPI_Init_thread");
        Finalize = (delegate* unmanaged<int>)Export("MPI_Finalize");
        CommRank = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_rank");
        CommSize = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_size");
        Allreduce = (delegate* unmanaged<nint, void*, int, nint, nint, nint, int>)Export("MPI_Allreduce");
        Bcast = (delegate* unmanaged<void*, int, nint, int, nint, int>)Export("MPI_Bcast");
        Barrier = (delegate* unmanaged<nint, int>)Export("MPI_Barrier");
        Abort = (delegate* unmanaged<nint, int, int>)Export("MPI_Abort");
    }

    /// <summary>Loads Open MPI from <paramref name="path"/> (a file name searched like dlopen, or a full path).</summary>
    /// <exception cref="MpiException">The library is missing or is not Open MPI.</exception>
    public static MpiNative Load(string path)
    {
        if (!NativeLibrary.TryLoad(path, out var handle))
            throw new MpiException(
                $"This process was started by mpirun, but Open MPI's library '{path}' could not be loaded. " +
                $"Install Open MPI (Debian/Ubuntu: apt-get install openmpi-bin libopenmpi3) or set {Collective.LibraryVariable} to the path of its libmpi.so.40.");
        try
        {
            return new MpiNative(handle, path);
        }
        catch (EntryPointNotFoundException e)
        {
            NativeLibrary.Free(handle);
            throw new MpiException(
                $"'{path}' is not Open MPI's libmpi ({e.Message}); sdd's binding reads Open MPI's handles. Point {Collective.LibraryVariable} at Open MPI's libmpi.so.40 and launch with Open MPI's mpirun.", e);
        }
    }

    nint Export(string name) =>
        NativeLibrary.TryGetExport(library, name, out var address) ? address
            : throw new EntryPointNotFoundException($"symbol {name} is missing");

    /// <summary>Throws when an MPI call returned an error code (MPI_SUCCESS is 0).</summary>
    public static void Check(int code, string call)
    {
        if (code != 0)
            throw new MpiException($"{call} failed with MPI error code {code}.");
    }
}
