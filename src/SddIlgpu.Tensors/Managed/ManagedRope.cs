// Rotary position embedding on the host, half-split convention (spec §3): pair (i, i + HS/2) of every head
// at position t is rotated by the table's (cos, sin) of t·θ^(−2i/HS); backward rotates by −angle.
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Managed;

internal sealed class ManagedRope(Device device) : IRopeOps
{
    public void Forward(Tensor x, Tensor y, Tensor table, int headDim) => Rotate(x, y, table, headDim, 1f);

    public void Backward(Tensor dY, Tensor dX, Tensor table, int headDim) => Rotate(dY, dX, table, headDim, -1f);

    /// <summary>y1 = x1·cos − sign·x2·sin, y2 = x2·cos + sign·x1·sin; y may alias x (each pair is read before written).</summary>
    void Rotate(Tensor x, Tensor y, Tensor table, int headDim, float sign)
    {
        ManagedElementwise.SameLength(x, y, "Rope");
        var width = x.Shape.Last;
        if (headDim <= 0 || headDim % 2 != 0 || width % headDim != 0)
            throw new ArgumentException($"Rope: head dimension {headDim} must be even and divide the last axis of {x.Name} {x.Shape}.");
        if (table.Length % headDim != 0)
            throw new ArgumentException($"Rope: table {table.Name} {table.Shape} must hold (T, HS/2, 2) values for HS = {headDim}.");
        var seqLen = (int)(table.Length / headDim);
        var rows = (int)(x.Length / width);
        if (rows % seqLen != 0)
            throw new ArgumentException($"Rope: {rows} rows of {x.Name} {x.Shape} are not a whole number of sequences of T = {seqLen}.");
        device.ThrowIfDisposed();
        device.Counters.CountLaunch();
        var half = headDim / 2;
        ManagedSimd.Rows(rows, width, (r0, r1) =>
        {
            ReadOnlySpan<float> src = x.HostSpan(), tab = table.HostSpan();
            var dst = y.HostSpan();
            for (var r = r0; r < r1; r++)
            {
                var angles = tab.Slice(r % seqLen * headDim, headDim);
                for (var h = r * width; h < (r + 1) * width; h += headDim)
                    for (var i = 0; i < half; i++)
                    {
                        float cos = angles[2 * i], sin = sign * angles[2 * i + 1];
                        float x1 = src[h + i], x2 = src[h + i + half];
                        dst[h + i] = x1 * cos - x2 * sin;
                        dst[h + i + half] = x2 * cos + x1 * sin;
                    }
            }
        });
    }
}
