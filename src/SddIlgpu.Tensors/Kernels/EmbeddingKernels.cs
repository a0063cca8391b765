// STUB: to be replaced by the real kernels.
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Kernels;

#pragma warning disable CS9113
internal sealed class EmbeddingKernels(Device device) : IEmbeddingOps
#pragma warning restore CS9113
{
    public void Forward(Tensor tokens, Tensor table, Tensor y) => throw new NotImplementedException();
    public void Backward(Tensor tokens, Tensor dY, Tensor dTable) => throw new NotImplementedException();
}
