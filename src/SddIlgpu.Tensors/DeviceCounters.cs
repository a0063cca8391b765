// Counters that predict GPU behaviour and can be tested on a CPU: launches, allocations, copies, syncs.
namespace SddIlgpu.Tensors;

/// <summary>A point-in-time copy of a device's counters.</summary>
public readonly record struct CounterSnapshot(long Launches, long Allocations, long Copies, long Synchronizations)
{
    public static CounterSnapshot operator -(CounterSnapshot a, CounterSnapshot b) =>
        new(a.Launches - b.Launches, a.Allocations - b.Allocations, a.Copies - b.Copies, a.Synchronizations - b.Synchronizations);
}

/// <summary>Counts kernel launches (or managed op calls), device allocations, host-device copies and synchronisations.</summary>
public sealed class DeviceCounters
{
    long launches, allocations, copies, syncs, allocatedBytes;

    public long Launches => Interlocked.Read(ref launches);
    public long Allocations => Interlocked.Read(ref allocations);
    public long Copies => Interlocked.Read(ref copies);
    public long Synchronizations => Interlocked.Read(ref syncs);

    /// <summary>Bytes of device memory allocated through arenas so far (never decreases).</summary>
    public long AllocatedBytes => Interlocked.Read(ref allocatedBytes);

    public CounterSnapshot Snapshot() => new(Launches, Allocations, Copies, Synchronizations);

    internal void CountLaunch() => Interlocked.Increment(ref launches);
    internal void CountAllocation(long bytes)
    {
        Interlocked.Increment(ref allocations);
        Interlocked.Add(ref allocatedBytes, bytes);
    }
    internal void CountCopy() => Interlocked.Increment(ref copies);
    internal void CountSync() => Interlocked.Increment(ref syncs);
}
