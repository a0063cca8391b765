// The collective operations data parallelism needs (one allreduce of the gradient arena per step, a few
// scalars, a broadcast, a barrier, abort), behind one small interface so the trainer does not know whether
// it runs alone or as one of N MPI ranks. NCCL/RCCL could implement the same interface on GPU clusters.
namespace SddIlgpu.Training.Distributed;

/// <summary>
/// A group of processes training one model together (data parallelism). Rank 0 is the one that prints and
/// writes files. Every method is collective: all ranks call it, in the same order, with the same lengths.
/// </summary>
public interface ICollective : IDisposable
{
    /// <summary>This process's index in the group, 0 ≤ Rank &lt; Size.</summary>
    int Rank { get; }

    /// <summary>Number of processes in the group.</summary>
    int Size { get; }

    /// <summary>This process's index among the group's processes on the same machine (picks its GPU).</summary>
    int LocalRank { get; }

    /// <summary>Replaces <paramref name="values"/> on every rank with their element-wise sum over all ranks (in place).</summary>
    void AllReduceSum(Span<float> values);

    /// <summary>Element-wise sum over all ranks of float64 statistics (in place).</summary>
    void AllReduceSum(Span<double> values);

    /// <summary>Copies <paramref name="data"/> from rank <paramref name="root"/> to every other rank.</summary>
    void Broadcast(Span<byte> data, int root = 0);

    /// <summary>Returns when every rank has called it.</summary>
    void Barrier();

    /// <summary>Ends every rank of the group at once with exit code <paramref name="exitCode"/>; does not return.</summary>
    void Abort(int exitCode);
}

/// <summary>The group of one: every collective is the identity. Training alone behaves exactly as without MPI.</summary>
public sealed class SingleProcess : ICollective
{
    public static readonly SingleProcess Instance = new();

    SingleProcess()
    {
    }

    public int Rank => 0;
    public int Size => 1;
    public int LocalRank => 0;

    public void AllReduceSum(Span<float> values)
    {
    }

    public void AllReduceSum(Span<double> values)
    {
    }

    public void Broadcast(Span<byte> data, int root = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNotEqual(root, 0);
    }

    public void Barrier()
    {
    }

    public void Abort(int exitCode) => Environment.Exit(exitCode);

    public void Dispose()
    {
    }
}
