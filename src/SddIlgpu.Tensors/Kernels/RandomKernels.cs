// Device-side uniform draws from the same Philox stream the host uses.
using ILGPU;
using ILGPU.Runtime;
using SddIlgpu.Tensors.Ops;
using SddIlgpu.Tensors.Random;

namespace SddIlgpu.Tensors.Kernels;

internal sealed class RandomKernels : IRandomOps
{
    readonly Device device;
    readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ulong, ulong> fillUniform;

    public RandomKernels(Device device)
    {
        this.device = device;
        fillUniform = device.Load(nameof(FillUniformKernel), a => a.LoadKernel<ArrayView<float>, ulong, ulong>(FillUniformKernel));
    }

    public void FillUniform(Tensor y, ulong seed, ulong stream) =>
        fillUniform(device.Launching(), device.GridStride(y.Length), y.View, seed, stream);

    [Kernel]
    internal static void FillUniformKernel(ArrayView<float> y, ulong seed, ulong stream)
    {
        for (var i = KernelInfra.GlobalStart; i < y.IntLength; i += KernelInfra.GlobalStride)
            y[i] = Philox.ToUniform(Philox.Next(seed, stream, (ulong)i));
    }
}
