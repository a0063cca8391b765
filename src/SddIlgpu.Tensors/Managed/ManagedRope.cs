// Rotary position embedding on the host, half-split convention (spec §3): pair (i, i + HS/2) of every head
// at position t is rotated by the table's (cos, sin) of t·θ^(−2i/HS); backward rotates by −angle.
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Managed;

internal sealed class ManagedRope(Device device) : IRopeOps
{
    public void Forward(Tensor x, Tensor y, Tensor table, int headDim) => Rotate(x, y, table, headDim, 1f);

    public void Backward(Tensor dY, Tensor dX, Tensor table, int headDim) => Rotate(dY, dX, table, headDim, -1f);

    /// <summary>cos (seqLen, half) then sign·sin (seqLen, half), split from the table's interleaved pairs.</summary>
    float[] split = [];

    /// <summary>
    /// y1 = x1·cos − x2·(sign·sin), y2 = x2·cos + x1·(sign·sin), in Vector256 lanes over i (the table's interleaved
    /// (cos, sin) pairs split once per call); the same float ops in the lanes and the scalar tail, so the same bits.
    /// y may alias x (each pair is read before it is written).
    /// </summary>
    void Rotate(Tensor x, Tensor y, Tensor table, int headDim, float sign)
    {
        var seqLen = OpChecks.RopeSeqLen("Rope", x, y, table, headDim);
        var width = x.Shape.Last;
        var rows = (int)(x.Length / width);
        device.ThrowIfDisposed();
        device.Counters.CountLaunch();
        var half = headDim / 2;
        var n = seqLen * half;
        if (split.Length < 2 * n)
            split = new float[2 * n];
        var tab = table.HostSpan();
        for (var i = 0; i < n; i++)
        {
            split[i] = tab[2 * i];
            split[n + i] = sign * tab[2 * i + 1];
        }
        var cs = split;
        ManagedSimd.Rows(rows, width, (r0, r1) =>
        {
            ReadOnlySpan<float> src = x.HostSpan();
            var dst = y.HostSpan();
            for (var r = r0; r < r1; r++)
            {
                var cos = cs.AsSpan(r % seqLen * half, half);
                var sin = cs.AsSpan(n + r % seqLen * half, half);
                for (var h = r * width; h < (r + 1) * width; h += headDim)
                    RotatePairs(src.Slice(h, headDim), cos, sin, dst.Slice(h, headDim), half);
            }
        });
    }

    static void RotatePairs(ReadOnlySpan<float> x, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, Span<float> y, int half)
    {
        ref var rx = ref MemoryMarshal.GetReference(x);
        ref var rc = ref MemoryMarshal.GetReference(cos);
        ref var rs = ref MemoryMarshal.GetReference(sin);
        ref var ry = ref MemoryMarshal.GetReference(y);
        var i = 0;
        for (; i + 8 <= half; i += 8)
        {
            var u = (nuint)i;
            Vector256<float> x1 = Vector256.LoadUnsafe(ref rx, u), x2 = Vector256.LoadUnsafe(ref rx, u + (nuint)half);
            Vector256<float> c = Vector256.LoadUnsafe(ref rc, u), s = Vector256.LoadUnsafe(ref rs, u);
            (x1 * c - x2 * s).StoreUnsafe(ref ry, u);
            (x2 * c + x1 * s).StoreUnsafe(ref ry, u + (nuint)half);
        }
        for (; i < half; i++)
        {
            float x1 = x[i], x2 = x[i + half];
            y[i] = x1 * cos[i] - x2 * sin[i];
            y[i + half] = x2 * cos[i] + x1 * sin[i];
        }
    }
}
