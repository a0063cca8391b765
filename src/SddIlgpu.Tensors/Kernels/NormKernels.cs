// STUB: to be replaced by the real kernels.
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Kernels;

#pragma warning disable CS9113
internal sealed class NormKernels(Device device) : INormOps
#pragma warning restore CS9113
{
    public void Forward(Tensor x, Tensor? gain, Tensor y, Tensor rstd, int groupSize, float eps) => throw new NotImplementedException();
    public void Backward(Tensor dY, Tensor x, Tensor? gain, Tensor rstd, Tensor dX, Tensor? dGain, int groupSize) => throw new NotImplementedException();
}
