// Elementwise ops on host memory: fill, copy, add, scale, axpy, vectorised and split into fixed ranges
// (each element's result depends only on its inputs, so any schedule gives the same bits).
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Managed;

internal sealed class ManagedElementwise(Device device) : IElementwiseOps
{
    public void Fill(Tensor y, float value)
    {
        Begin();
        var n = ManagedReduction.IntLength(y, "Fill");
        ManagedSimd.Rows(n, 1, (s, e) => y.HostSpan()[s..e].Fill(value));
    }

    public void Copy(Tensor x, Tensor y)
    {
        SameLength(x, y, "Copy");
        Begin();
        ManagedSimd.Rows((int)y.Length, 1, (s, e) => x.HostSpan()[s..e].CopyTo(y.HostSpan()[s..e]));
    }

    public void Add(Tensor a, Tensor b, Tensor y)
    {
        SameLength(a, y, "Add");
        SameLength(b, y, "Add");
        Begin();
        ManagedSimd.Rows((int)y.Length, 1, (s, e) => AddRange(a.HostSpan()[s..e], b.HostSpan()[s..e], y.HostSpan()[s..e]));
    }

    public void Scale(Tensor x, float s, Tensor y)
    {
        SameLength(x, y, "Scale");
        Begin();
        ManagedSimd.Rows((int)y.Length, 1, (i0, i1) => ScaleRange(x.HostSpan()[i0..i1], s, y.HostSpan()[i0..i1]));
    }

    public void Axpy(float a, Tensor x, Tensor y)
    {
        SameLength(x, y, "Axpy");
        Begin();
        ManagedSimd.Rows((int)y.Length, 1, (s, e) => AxpyRange(a, x.HostSpan()[s..e], y.HostSpan()[s..e]));
    }

    void Begin()
    {
        device.ThrowIfDisposed();
        device.Counters.CountLaunch();
    }

    static void AddRange(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y)
    {
        ref var ra = ref MemoryMarshal.GetReference(a);
        ref var rb = ref MemoryMarshal.GetReference(b);
        ref var ry = ref MemoryMarshal.GetReference(y);
        var i = 0;
        for (; i + 8 <= y.Length; i += 8)
            (Vector256.LoadUnsafe(ref ra, (nuint)i) + Vector256.LoadUnsafe(ref rb, (nuint)i)).StoreUnsafe(ref ry, (nuint)i);
        for (; i < y.Length; i++)
            y[i] = a[i] + b[i];
    }

    /// <summary>y[i] = s·x[i], in 8-float vectors then the tail (also fused attention's head rows).</summary>
    internal static void ScaleRange(ReadOnlySpan<float> x, float s, Span<float> y)
    {
        ref var rx = ref MemoryMarshal.GetReference(x);
        ref var ry = ref MemoryMarshal.GetReference(y);
        var vs = Vector256.Create(s);
        var i = 0;
        for (; i + 8 <= y.Length; i += 8)
            (vs * Vector256.LoadUnsafe(ref rx, (nuint)i)).StoreUnsafe(ref ry, (nuint)i);
        for (; i < y.Length; i++)
            y[i] = s * x[i];
    }

    /// <summary>y += a·x as a multiply then an add (unfused, like the ILGPU kernel).</summary>
    static void AxpyRange(float a, ReadOnlySpan<float> x, Span<float> y)
    {
        ref var rx = ref MemoryMarshal.GetReference(x);
        ref var ry = ref MemoryMarshal.GetReference(y);
        var va = Vector256.Create(a);
        var i = 0;
        for (; i + 8 <= y.Length; i += 8)
            (Vector256.LoadUnsafe(ref ry, (nuint)i) + va * Vector256.LoadUnsafe(ref rx, (nuint)i)).StoreUnsafe(ref ry, (nuint)i);
        for (; i < y.Length; i++)
            y[i] += a * x[i];
    }

    internal static void SameLength(Tensor a, Tensor b, string op)
    {
        if (a.Length != b.Length)
            throw new ArgumentException($"{op}: {a.Name} {a.Shape} and {b.Name} {b.Shape} must have the same number of elements ({a.Length} vs {b.Length}).");
    }
}
