// Token embedding (spec §3: x = E[tokens]): forward gathers rows of the (V, C) table; backward scatters
// dY back with dTable[token] += dY[n]. Determinism without atomics: one thread owns each column c and
// walks the positions n in order, so every dTable element is summed in the same order on every run.
using ILGPU;
using ILGPU.Runtime;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Kernels;

internal sealed class EmbeddingKernels : IEmbeddingOps
{
    readonly Device device;
    readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int> forward;
    readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int> backward;

    public EmbeddingKernels(Device device)
    {
        this.device = device;
        forward = device.Load(nameof(EmbeddingForwardKernel), a => a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(EmbeddingForwardKernel));
        backward = device.Load(nameof(EmbeddingBackwardKernel), a => a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(EmbeddingBackwardKernel));
    }

    public void Forward(Tensor tokens, Tensor table, Tensor y)
    {
        var width = Width("Embedding.Forward", tokens, table, y);
        forward(device.Launching(), device.GridStride(y.Length), tokens.View, table.View, y.View, width);
    }

    public void Backward(Tensor tokens, Tensor dY, Tensor dTable)
    {
        var width = Width("Embedding.Backward", tokens, dTable, dY);
        backward(device.Launching(), device.GridStride(width), tokens.View, dY.View, dTable.View, (int)tokens.Length, width);
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

    /// <summary>Thread per column c: dTable[tokens[n], c] += dY[n, c] for n = 0, 1, ... in order.</summary>
    [Kernel]
    internal static void EmbeddingBackwardKernel(ArrayView<float> tokens, ArrayView<float> dY, ArrayView<float> dTable, int count, int width)
    {
        for (var c = KernelInfra.GlobalStart; c < width; c += KernelInfra.GlobalStride)
            for (var n = 0; n < count; n++)
                dTable[(int)tokens[n] * width + c] += dY[n * width + c];
    }
}
