// Token embedding (spec §3: x = E[tokens]): forward gathers rows of the (V, C) table; backward scatters
// dY back with dTable[token] += dY[n]. Determinism without atomics, bucketed by token range (after llm.c's
// bucketed encoder_backward): a thread owns a column c of a range of token ids, walks the positions n in order
// and adds the rows whose token falls in its range, so every dTable element is summed in position order. The
// ranges only spread the work over more threads (neighbouring threads take neighbouring columns of one range):
// the sums are the same, bit for bit, for any number of ranges.
using ILGPU;
using ILGPU.Runtime;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Kernels;

internal sealed class EmbeddingKernels : IEmbeddingOps
{
    readonly Device device;
    readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int> forward;
    readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int> backward;

    public EmbeddingKernels(Device device)
    {
        this.device = device;
        forward = device.Load(nameof(EmbeddingForwardKernel), a => a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(EmbeddingForwardKernel));
        backward = device.Load(nameof(EmbeddingBackwardKernel), a => a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>(EmbeddingBackwardKernel));
    }

    /// <summary>
    /// Token ranges of the backward pass; 0 picks them from the device (one on the CPU accelerator, where every
    /// thread is an OS thread; enough for two 256-thread groups per multiprocessor on GPUs). Tests set it.
    /// </summary>
    internal int TokenRanges { get; set; }

    public void Forward(Tensor tokens, Tensor table, Tensor y)
    {
        var width = Width("Embedding.Forward", tokens, table, y);
        forward(device.Launching(), device.GridStride(y.Length), tokens.View, table.View, y.View, width);
    }

    public void Backward(Tensor tokens, Tensor dY, Tensor dTable)
    {
        var width = Width("Embedding.Backward", tokens, dTable, dY);
        var vocab = (int)(dTable.Length / width);
        var ranges = Math.Clamp(TokenRanges > 0 ? TokenRanges
            : device.Geometry.HostMemory ? 1
            : (int)((device.Geometry.Multiprocessors * 512L + width - 1) / width), 1, vocab);
        var span = (vocab + ranges - 1) / ranges;
        ranges = (vocab + span - 1) / span;
        backward(device.Launching(), device.GridStride((long)ranges * width), tokens.View, dY.View, dTable.View,
            (int)tokens.Length, width, span);
    }

    /// <summary>C, checking table is (V, C) and y is (N, C) for N tokens. Token ids are trusted to lie in [0, V).</summary>
    static int Width(string op, Tensor tokens, Tensor table, Tensor y)
    {
        KernelInfra.IntLength(y, op);
        KernelInfra.IntLength(table, op);
        var width = table.Shape.Last;
        if (y.Length != tokens.Length * width)
            throw new ArgumentException($"{op}: {y.Name} {y.Shape} must be (N, C) for {tokens.Length} tokens and table {table.Name} {table.Shape} = (V, C).");
        return width;
    }

    [Kernel]
    internal static void EmbeddingForwardKernel(ArrayView<float> tokens, ArrayView<float> table, ArrayView<float> y, int width)
    {
        for (var k = KernelInfra.GlobalStart; k < y.IntLength; k += KernelInfra.GlobalStride)
        {
            var n = k / width;
            var c = k - n * width;
            y[k] = table[(int)tokens[n] * width + c];
        }
    }

    /// <summary>
    /// Thread per (token range r, column c), c fastest: dTable[v, c] += dY[n, c] for the positions n = 0, 1, … in
    /// order whose token v lies in [r·span, (r + 1)·span).
    /// </summary>
    [Kernel]
    internal static void EmbeddingBackwardKernel(ArrayView<float> tokens, ArrayView<float> dY, ArrayView<float> dTable, int count,
        int width, int span)
    {
        var items = (dTable.IntLength / width + span - 1) / span * width;
        for (var item = KernelInfra.GlobalStart; item < items; item += KernelInfra.GlobalStride)
        {
            var range = item / width;
            var c = item - range * width;
            var lo = range * span;
            for (var n = 0; n < count; n++)
            {
                var v = (int)tokens[n] - lo;
                if (v >= 0 && v < span)
                    dTable[(lo + v) * width + c] += dY[n * width + c];
            }
        }
    }
}
