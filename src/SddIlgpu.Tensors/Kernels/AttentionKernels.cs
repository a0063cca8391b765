// STUB: to be replaced by the real kernels.
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Kernels;

#pragma warning disable CS9113
internal sealed class AttentionKernels(Device device, GemmKernels gemm) : IAttentionOps
#pragma warning restore CS9113
{
    public void Forward(in AttentionShape s, Tensor q, Tensor k, Tensor v, Tensor probs, Tensor ctx) => throw new NotImplementedException();
    public void Backward(in AttentionShape s, Tensor dCtx, Tensor q, Tensor k, Tensor v, Tensor probs, Tensor dProbs, Tensor dQ, Tensor dK, Tensor dV) => throw new NotImplementedException();
    public void CausalSoftmaxForward(Tensor scores, float scale) => throw new NotImplementedException();
    public void CausalSoftmaxBackward(Tensor probs, Tensor dProbs, float scale) => throw new NotImplementedException();
}
