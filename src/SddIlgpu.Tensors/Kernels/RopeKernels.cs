// STUB: to be replaced by the real kernels.
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Kernels;

#pragma warning disable CS9113
internal sealed class RopeKernels(Device device) : IRopeOps
#pragma warning restore CS9113
{
    public void Forward(Tensor x, Tensor y, Tensor table, int headDim) => throw new NotImplementedException();
    public void Backward(Tensor dY, Tensor dX, Tensor table, int headDim) => throw new NotImplementedException();
}
