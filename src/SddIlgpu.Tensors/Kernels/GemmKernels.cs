// STUB: to be replaced by the real kernels.
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Kernels;

#pragma warning disable CS9113
internal sealed class GemmKernels(Device device) : IGemmOps
#pragma warning restore CS9113
{
    public void Gemm(in GemmSpec spec, Tensor a, in MatrixLayout la, Tensor b, in MatrixLayout lb, Tensor c, in MatrixLayout lc) => throw new NotImplementedException();
}
