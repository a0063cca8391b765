// Deterministic sums in two passes, no atomics. Pass 1: a fixed number of partials (512, independent of the
// device), each the shared-memory tree of one group's lanes; lane l of partial p sums x[p·G + l + k·512·G] in k
// order (consecutive lanes read consecutive addresses). Pass 2: one group adds the partials, each thread a fixed
// stride of them in order, then a tree. The same input, device and group size G give the same bits every run.
using ILGPU;
using ILGPU.Runtime;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Kernels;

internal sealed class ReductionKernels : IReductionOps
{
    /// <summary>
    /// Number of partial sums: fixed so the summation order never depends on the device's size, and 512 so that
    /// pass 1 gives every SM of an H100 (132) at least two groups.
    /// </summary>
    internal const int Partials = 512;

    readonly Device device;
    readonly Tensor partials;
    readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, int, int> partialSum;
    readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, int, float> finish;

    public ReductionKernels(Device device)
    {
        this.device = device;
        partialSum = device.Load(nameof(PartialSumKernel), a => a.LoadKernel<ArrayView<float>, ArrayView<float>, int, int>(PartialSumKernel));
        finish = device.Load(nameof(FinishKernel), a => a.LoadKernel<ArrayView<float>, ArrayView<float>, int, float>(FinishKernel));
        partials = device.AllocateTensor(Partials, "reduction.partials");
    }

    public void SumSquares(Tensor x, Tensor output, int index) => Reduce(x, squares: true, output, index, 1f);

    public void Sum(Tensor x, Tensor output, int index) => Reduce(x, squares: false, output, index, 1f);

    /// <summary>output[index] = (Σ x) / divisor, the division done once on the final sum (the loss mean uses it).</summary>
    internal void SumDivided(Tensor x, Tensor output, int index, float divisor) => Reduce(x, squares: false, output, index, divisor);

    void Reduce(Tensor x, bool squares, Tensor output, int index, float divisor)
    {
        if ((uint)index >= output.Length)
            throw new ArgumentOutOfRangeException(nameof(index), $"Reduction output index {index} is outside {output.Name} {output.Shape}.");
        var n = KernelInfra.IntLength(x, "Reduction");
        var threads = device.CooperativeThreads();
        if (n > int.MaxValue - Partials * threads)
            throw new ArgumentException($"Reduction: {x.Name} has {n} elements; at most {int.MaxValue - Partials * threads} fit 32-bit strided indexing.");
        partialSum(device.Launching(), new KernelConfig(device.CooperativeGroups(Partials), threads),
            x.View, partials.View, n, squares ? 1 : 0);
        finish(device.Launching(), new KernelConfig(1, threads), partials.View, output.View, index, divisor);
    }

    /// <summary>
    /// Groups loop over partials p; lane l sums (or sums the squares of) x[p·G + l + k·Partials·G] for k = 0, 1, …,
    /// then the group's tree gives partials[p]. A partial whose first element lies past n is 0 without a tree.
    /// </summary>
    [Kernel]
    internal static void PartialSumKernel(ArrayView<float> x, ArrayView<float> partials, int n, int squares)
    {
        var shared = SharedMemory.Allocate<float>(KernelInfra.MaxCooperativeThreads);
        var lane = Group.IdxX;
        var threads = Group.DimX;
        var stride = Partials * threads;
        for (var p = Grid.IdxX; p < Partials; p += Grid.DimX)
        {
            var first = p * threads;
            if (first >= n)
            {
                if (lane == 0)
                    partials[p] = 0f;
                continue;
            }
            var s = 0f;
            for (var i = first + lane; i < n; i += stride)
            {
                var v = x[i];
                s += squares != 0 ? v * v : v;
            }
            var total = KernelInfra.TeamSum(shared, 0, lane, threads, s);
            if (lane == 0)
                partials[p] = total;
        }
    }

    /// <summary>One group: thread l adds partials l, l + G, … in order, then the group's tree; output[index] = sum / divisor.</summary>
    [Kernel]
    internal static void FinishKernel(ArrayView<float> partials, ArrayView<float> output, int index, float divisor)
    {
        var shared = SharedMemory.Allocate<float>(KernelInfra.MaxCooperativeThreads);
        var lane = Group.IdxX;
        var s = 0f;
        for (var p = lane; p < Partials; p += Group.DimX)
            s += partials[p];
        var total = KernelInfra.TeamSum(shared, 0, lane, Group.DimX, s);
        if (lane == 0)
            output[index] = total / divisor;
    }
}
