// STUB: to be replaced by the real kernels.
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Kernels;

#pragma warning disable CS9113
internal sealed class LossKernels(Device device, ReductionKernels reduction) : ILossOps
#pragma warning restore CS9113
{
    public void CrossEntropy(Tensor logits, Tensor targets, Tensor losses, Tensor loss, Tensor dLogits, float gradScale) => throw new NotImplementedException();
}
