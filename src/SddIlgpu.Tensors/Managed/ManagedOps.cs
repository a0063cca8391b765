// The fast managed CPU path. STUB: uses the ILGPU kernels for every family until the managed ops land.
using SddIlgpu.Tensors.Kernels;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Managed;

internal static class ManagedOps
{
    public static OpSet Create(Device device, KernelOps kernels) => kernels.ToOpSet();
}
