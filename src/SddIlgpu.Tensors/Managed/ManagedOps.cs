// The fast managed CPU path: SIMD C# on the host memory of ILGPU's CPU accelerator, one op class per family,
// replacing the ILGPU kernels family by family on the `cpu` device (tests cross-check the two). Like a GPU
// stream, a device takes ops from one thread at a time: the op objects keep per-device scratch (packed GEMM
// panels, partial sums) that each call finishes with before it returns, so sequential calls never share it live.
using SddIlgpu.Tensors.Kernels;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Managed;

internal static class ManagedOps
{
    /// <summary>Every family is managed; <paramref name="kernels"/> stays the fallback a family can return to.</summary>
#pragma warning disable IDE0060
    public static OpSet Create(Device device, KernelOps kernels)
    {
        var gemm = new ManagedGemm(device);
        return new()
        {
            Gemm = gemm,
            WeightPacking = new ManagedWeightPacking(device, gemm),
            Norm = new ManagedNorm(device),
            FusedFfn = new ManagedFusedFfn(device),
            Rope = new ManagedRope(device),
            Attention = new ManagedAttention(device),
            Activation = new ManagedActivation(device),
            Embedding = new ManagedEmbedding(device),
            Loss = new ManagedLoss(device),
            Elementwise = new ManagedElementwise(device),
            Reduction = new ManagedReduction(device),
            Optimizer = new ManagedOptimizer(device),
            Random = new ManagedRandom(device),
        };
    }
#pragma warning restore IDE0060
}
