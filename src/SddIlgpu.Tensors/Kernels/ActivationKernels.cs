// STUB: to be replaced by the real kernels.
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Kernels;

#pragma warning disable CS9113
internal sealed class ActivationKernels(Device device) : IActivationOps
#pragma warning restore CS9113
{
    public void SwiGluForward(Tensor upGate, Tensor s) => throw new NotImplementedException();
    public void SwiGluBackward(Tensor dS, Tensor upGate, Tensor dUpGate) => throw new NotImplementedException();
    public void ConcatLast(Tensor a, Tensor b, Tensor y) => throw new NotImplementedException();
    public void SplitLast(Tensor y, Tensor a, Tensor b) => throw new NotImplementedException();
}
