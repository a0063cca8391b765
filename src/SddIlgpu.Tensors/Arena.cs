// One device allocation that hands out tensor views: parameters, gradients, moments and
// activations each live in an arena allocated once, so the training step allocates nothing.
using ILGPU;
using ILGPU.Runtime;

namespace SddIlgpu.Tensors;

/// <summary>
/// A block of float32 device memory, allocated once, from which <see cref="Tensor"/> views are taken
/// in order (a bump allocator). Disposing the arena frees the memory; its views then throw on use.
/// </summary>
public sealed class Arena : IDisposable
{
    MemoryBuffer1D<float, Stride1D.Dense>? buffer;

    /// <summary>Elements of the allocation skipped so that the arena starts on a cache line (host memory only).</summary>
    readonly long start;

    /// <summary>
    /// Host arenas start on a 64-byte boundary: large host allocations come from mmap 16 bytes past a page start, which
    /// put every tensor's 32-byte vectors across cache lines half the time and its 64-byte ones always (measured
    /// 2026-12-01: every arena of 1 M floats and more began 16 bytes past a 4 KiB boundary).
    /// </summary>
    const int HostAlignment = 64;
    long used;

    internal Arena(Device device, long capacity, string name)
    {
        if (capacity <= 0)
            throw new ArgumentOutOfRangeException(nameof(capacity), $"Arena '{name}' needs a positive capacity; got {capacity}.");
        Device = device;
        Name = name;
        Capacity = capacity;
        var slack = device.IsHostMemory ? HostAlignment / sizeof(float) - 1 : 0;
        buffer = device.Accelerator.Allocate1D<float>(capacity + slack);
        if (slack > 0)
            start = (HostAlignment - HostAddress(buffer) % HostAlignment) % HostAlignment / sizeof(float);
        device.Counters.CountAllocation(capacity * sizeof(float));
        if (device.IsHostMemory && HugePagesEnabled)
            HugePageBytes = HugePages.Advise(HostAddress(buffer) + (nint)(start * sizeof(float)), capacity * sizeof(float));
        buffer.View.MemSetToZero(device.Stream);
    }

    static unsafe nint HostAddress(MemoryBuffer1D<float, Stride1D.Dense> b) => (nint)((ArrayView<float>)b.View).LoadEffectiveAddressAsPtr().ToPointer();

    /// <summary>
    /// Whether new host arenas ask for transparent huge pages (<see cref="HugePages"/>); the perf tool turns it off
    /// to measure what they buy.
    /// </summary>
    internal static bool HugePagesEnabled { get; set; } = true;

    /// <summary>Bytes of the arena the kernel was asked to back with transparent huge pages (0: none).</summary>
    internal long HugePageBytes { get; }

    public Device Device { get; }
    public string Name { get; }

    /// <summary>Number of float32 elements the arena holds.</summary>
    public long Capacity { get; }

    /// <summary>Number of elements handed out so far.</summary>
    public long Used => used;

    public bool IsDisposed => buffer is null;

    /// <summary>Takes the next <paramref name="shape"/>-sized view from the arena.</summary>
    public Tensor Take(Shape shape, string? name = null)
    {
        ThrowIfDisposed();
        var length = shape.Length;
        if (used + length > Capacity)
            throw new InvalidOperationException(
                $"Arena '{Name}' is full: taking {name ?? "a tensor"} {shape} needs {length} elements but only {Capacity - used} of {Capacity} are left. Size the arena for everything it must hold.");
        var t = new Tensor(this, used, shape, name ?? $"{Name}[{used}]");
        used += length;
        return t;
    }

    /// <summary>The whole arena as one flat tensor (e.g. for one AdamW launch or one gradient fill).</summary>
    public Tensor All(string? name = null)
    {
        ThrowIfDisposed();
        return new Tensor(this, 0, new Shape(checked((int)Math.Max(1, used))), name ?? Name);
    }

    internal ArrayView<float> View
    {
        get
        {
            ThrowIfDisposed();
            return start == 0 && buffer!.Length == Capacity ? buffer.View : buffer!.View.SubView(start, Capacity);
        }
    }

    internal void ThrowIfDisposed()
    {
        if (buffer is null)
            throw new ObjectDisposedException(Name, $"Arena '{Name}' was disposed; its tensors can no longer be used.");
        Device.ThrowIfDisposed();
    }

    public void Dispose()
    {
        var b = Interlocked.Exchange(ref buffer, null);
        b?.Dispose();
    }
}
