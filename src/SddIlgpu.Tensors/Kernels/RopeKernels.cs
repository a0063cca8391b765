// Half-split rotary embedding (spec §3, reference rope()): within each head, pair (x1, x2) = (x[i], x[i + HS/2])
// becomes (x1·cos − x2·sin, x2·cos + x1·sin) with the host-built (cos, sin) table of position t. Backward is
// the inverse rotation (sin negated). One thread per pair reads both values before writing: in-place safe.
using ILGPU;
using ILGPU.Runtime;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Kernels;

/// <summary>Sizes of one rotation: Pairs pairs, Half = HS/2, RowWidth = H·HS values per position, T positions.</summary>
internal readonly struct RopeShape(int pairs, int half, int rowWidth, int seqLen, float sinSign)
{
    public readonly int Pairs = pairs;
    public readonly int Half = half;
    public readonly int RowWidth = rowWidth;
    public readonly int SeqLen = seqLen;

    /// <summary>+1 rotates by +angle (forward), −1 by −angle (backward).</summary>
    public readonly float SinSign = sinSign;
}

internal sealed class RopeKernels : IRopeOps
{
    readonly Device device;
    readonly Action<AcceleratorStream, KernelConfig, RopeShape, ArrayView<float>, ArrayView<float>, ArrayView<float>> rotate;

    public RopeKernels(Device device)
    {
        this.device = device;
        rotate = device.Load(nameof(RopeRotateKernel), a => a.LoadKernel<RopeShape, ArrayView<float>, ArrayView<float>, ArrayView<float>>(RopeRotateKernel));
    }

    public void Forward(Tensor x, Tensor y, Tensor table, int headDim) => Rotate("Rope.Forward", x, y, table, headDim, 1f);

    public void Backward(Tensor dY, Tensor dX, Tensor table, int headDim) => Rotate("Rope.Backward", dY, dX, table, headDim, -1f);

    void Rotate(string op, Tensor x, Tensor y, Tensor table, int headDim, float sinSign)
    {
        var seqLen = OpChecks.RopeSeqLen(op, x, y, table, headDim);
        var rowWidth = x.Shape.Last;
        var shape = new RopeShape(KernelInfra.IntLength(x, op) / 2, headDim / 2, rowWidth, seqLen, sinSign);
        rotate(device.Launching(), device.GridStride(shape.Pairs), shape, x.View, y.View, table.View);
    }

    /// <summary>Pair p = (head-row g, i): base g·HS, position t = (base / rowWidth) mod T.</summary>
    [Kernel]
    internal static void RopeRotateKernel(RopeShape s, ArrayView<float> x, ArrayView<float> y, ArrayView<float> table)
    {
        for (var p = KernelInfra.GlobalStart; p < s.Pairs; p += KernelInfra.GlobalStride)
        {
            var head = p / s.Half;
            var i = p - head * s.Half;
            var start = head * 2 * s.Half;
            var t = start / s.RowWidth % s.SeqLen;
            var cos = table[(t * s.Half + i) * 2];
            var sin = s.SinSign * table[(t * s.Half + i) * 2 + 1];
            var x1 = x[start + i];
            var x2 = x[start + i + s.Half];
            y[start + i] = x1 * cos - x2 * sin;
            y[start + i + s.Half] = x2 * cos + x1 * sin;
        }
    }
}
