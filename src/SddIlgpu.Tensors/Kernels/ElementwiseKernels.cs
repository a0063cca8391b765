// Elementwise ops: fill, copy, add, scale, axpy. Grid-stride loops, one launch each.
using ILGPU;
using ILGPU.Runtime;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Kernels;

internal sealed class ElementwiseKernels : IElementwiseOps
{
    readonly Device device;
    readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, float> fill;
    readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>> copy;
    readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>> add;
    readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, float, ArrayView<float>> scale;
    readonly Action<AcceleratorStream, KernelConfig, float, ArrayView<float>, ArrayView<float>> axpy;

    public ElementwiseKernels(Device device)
    {
        this.device = device;
        fill = device.Load(nameof(FillKernel), a => a.LoadKernel<ArrayView<float>, float>(FillKernel));
        copy = device.Load(nameof(CopyKernel), a => a.LoadKernel<ArrayView<float>, ArrayView<float>>(CopyKernel));
        add = device.Load(nameof(AddKernel), a => a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>>(AddKernel));
        scale = device.Load(nameof(ScaleKernel), a => a.LoadKernel<ArrayView<float>, float, ArrayView<float>>(ScaleKernel));
        axpy = device.Load(nameof(AxpyKernel), a => a.LoadKernel<float, ArrayView<float>, ArrayView<float>>(AxpyKernel));
    }

    public void Fill(Tensor y, float value) =>
        fill(device.Launching(), device.GridStride(y.Length), y.View, value);

    public void Copy(Tensor x, Tensor y)
    {
        KernelInfra.SameLength(x, y, "Copy");
        copy(device.Launching(), device.GridStride(y.Length), x.View, y.View);
    }

    public void Add(Tensor a, Tensor b, Tensor y)
    {
        KernelInfra.SameLength(a, y, "Add");
        KernelInfra.SameLength(b, y, "Add");
        add(device.Launching(), device.GridStride(y.Length), a.View, b.View, y.View);
    }

    public void Scale(Tensor x, float s, Tensor y)
    {
        KernelInfra.SameLength(x, y, "Scale");
        scale(device.Launching(), device.GridStride(y.Length), x.View, s, y.View);
    }

    public void Axpy(float a, Tensor x, Tensor y)
    {
        KernelInfra.SameLength(x, y, "Axpy");
        axpy(device.Launching(), device.GridStride(y.Length), a, x.View, y.View);
    }

    [Kernel]
    internal static void FillKernel(ArrayView<float> y, float value)
    {
        for (var i = KernelInfra.GlobalStart; i < y.IntLength; i += KernelInfra.GlobalStride)
            y[i] = value;
    }

    [Kernel]
    internal static void CopyKernel(ArrayView<float> x, ArrayView<float> y)
    {
        for (var i = KernelInfra.GlobalStart; i < y.IntLength; i += KernelInfra.GlobalStride)
            y[i] = x[i];
    }

    [Kernel]
    internal static void AddKernel(ArrayView<float> a, ArrayView<float> b, ArrayView<float> y)
    {
        for (var i = KernelInfra.GlobalStart; i < y.IntLength; i += KernelInfra.GlobalStride)
            y[i] = a[i] + b[i];
    }

    [Kernel]
    internal static void ScaleKernel(ArrayView<float> x, float s, ArrayView<float> y)
    {
        for (var i = KernelInfra.GlobalStart; i < y.IntLength; i += KernelInfra.GlobalStride)
            y[i] = s * x[i];
    }

    [Kernel]
    internal static void AxpyKernel(float a, ArrayView<float> x, ArrayView<float> y)
    {
        for (var i = KernelInfra.GlobalStart; i < y.IntLength; i += KernelInfra.GlobalStride)
            y[i] += a * x[i];
    }
}
