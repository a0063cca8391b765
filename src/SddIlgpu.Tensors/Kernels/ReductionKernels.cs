// Deterministic sums: a fixed number of partials (independent of the device's launch shape), each a
// strided sequential sum, then one thread adds the partials in order. No atomics, so the same input gives
// the same bits on every run and every device.
using ILGPU;
using ILGPU.Runtime;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Kernels;

internal sealed class ReductionKernels : IReductionOps
{
    /// <summary>Number of partial sums; fixed so the summation order never depends on the device.</summary>
    internal const int Partials = 1024;

    readonly Device device;
    readonly Tensor partials;
    readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, int> partialSum;
    readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, int> partialSumSquares;
    readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, int> finish;

    public ReductionKernels(Device device)
    {
        this.device = device;
        partialSum = device.Load(nameof(PartialSumKernel), a => a.LoadKernel<ArrayView<float>, ArrayView<float>, int>(PartialSumKernel));
        partialSumSquares = device.Load(nameof(PartialSumSquaresKernel), a => a.LoadKernel<ArrayView<float>, ArrayView<float>, int>(PartialSumSquaresKernel));
        finish = device.Load(nameof(FinishKernel), a => a.LoadKernel<ArrayView<float>, ArrayView<float>, int>(FinishKernel));
        partials = device.AllocateTensor(Partials, "reduction.partials");
    }

    public void SumSquares(Tensor x, Tensor output, int index) => Reduce(partialSumSquares, x, output, index);

    public void Sum(Tensor x, Tensor output, int index) => Reduce(partialSum, x, output, index);

    void Reduce(Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, int> partial, Tensor x, Tensor output, int index)
    {
        if ((uint)index >= output.Length)
            throw new ArgumentOutOfRangeException(nameof(index), $"Reduction output index {index} is outside {output.Name} {output.Shape}.");
        partial(device.Launching(), device.GridStride(Partials), x.View, partials.View, KernelInfra.IntLength(x, "Reduction"));
        finish(device.Launching(), new KernelConfig(1, device.GroupSize()), partials.View, output.View, index);
    }

    [Kernel]
    internal static void PartialSumKernel(ArrayView<float> x, ArrayView<float> partials, int n)
    {
        for (var p = KernelInfra.GlobalStart; p < Partials; p += KernelInfra.GlobalStride)
        {
            var s = 0f;
            for (var i = p; i < n; i += Partials)
                s += x[i];
            partials[p] = s;
        }
    }

    [Kernel]
    internal static void PartialSumSquaresKernel(ArrayView<float> x, ArrayView<float> partials, int n)
    {
        for (var p = KernelInfra.GlobalStart; p < Partials; p += KernelInfra.GlobalStride)
        {
            var s = 0f;
            for (var i = p; i < n; i += Partials)
                s += x[i] * x[i];
            partials[p] = s;
        }
    }

    /// <summary>Pairwise (tree) sum of the partials by thread 0, in a fixed order.</summary>
    [Kernel]
    internal static void FinishKernel(ArrayView<float> partials, ArrayView<float> output, int index)
    {
        if (Grid.GlobalIndex.X != 0)
            return;
        for (var width = Partials / 2; width >= 1; width /= 2)
            for (var i = 0; i < width; i++)
                partials[i] += partials[i + width];
        output[index] = partials[0];
    }
}
