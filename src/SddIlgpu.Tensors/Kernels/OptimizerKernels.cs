// Fused AdamW over a flat arena, torch.optim.AdamW semantics (spec §6, reference adamw_steps()):
// g = grad·min(1, clip/(‖g‖ + 1e-6)), p ← p·(1 − lr·wd·mask), m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g²,
// p ← p − lr·(m/bc1)/(sqrt(v/bc2) + eps). The clip scale is computed in-kernel from gradSumSquares[0].
using ILGPU;
using ILGPU.Runtime;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Kernels;

/// <summary>The step's hyper-parameters as plain fields (kernel arguments avoid record-struct properties).</summary>
internal readonly struct AdamWArgs(in AdamWStep step)
{
    public readonly float Lr = step.Lr;
    public readonly float Beta1 = step.Beta1;
    public readonly float Beta2 = step.Beta2;
    public readonly float Eps = step.Eps;
    public readonly float DecayRate = step.Lr * step.WeightDecay;
    public readonly float BiasCorrection1 = step.BiasCorrection1;
    public readonly float BiasCorrection2 = step.BiasCorrection2;
    public readonly float GradClip = step.GradClip;
}

internal sealed class OptimizerKernels : IOptimizerOps
{
    readonly Device device;
    readonly Action<AcceleratorStream, KernelConfig, AdamWArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> adamW;

    public OptimizerKernels(Device device)
    {
        this.device = device;
        adamW = device.Load(nameof(AdamWKernel), a => a.LoadKernel<AdamWArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(AdamWKernel));
    }

    public void AdamW(in AdamWStep step, Tensor param, Tensor grad, Tensor m, Tensor v, Tensor decayMask, Tensor gradSumSquares)
    {
        const string op = "AdamW";
        KernelInfra.IntLength(param, op);
        KernelInfra.SameLength(param, grad, op);
        KernelInfra.SameLength(param, m, op);
        KernelInfra.SameLength(param, v, op);
        KernelInfra.SameLength(param, decayMask, op);
        if (gradSumSquares.Length < 1)
            throw new ArgumentException($"{op}: gradSumSquares {gradSumSquares.Name} must hold ‖g‖² at index 0.");
        adamW(device.Launching(), device.GridStride(param.Length), new AdamWArgs(step),
            param.View, grad.View, m.View, v.View, decayMask.View, gradSumSquares.View);
    }

    [Kernel]
    internal static void AdamWKernel(AdamWArgs a, ArrayView<float> param, ArrayView<float> grad, ArrayView<float> m,
        ArrayView<float> v, ArrayView<float> decayMask, ArrayView<float> gradSumSquares)
    {
        var scale = 1f;
        if (a.GradClip > 0f)
            scale = MathF.Min(1f, a.GradClip / (MathF.Sqrt(gradSumSquares[0]) + 1e-6f));
        for (var i = KernelInfra.GlobalStart; i < param.IntLength; i += KernelInfra.GlobalStride)
        {
            var g = grad[i] * scale;
            var p = param[i] * (1f - a.DecayRate * decayMask[i]);
            var mi = a.Beta1 * m[i] + (1f - a.Beta1) * g;
            var vi = a.Beta2 * v[i] + (1f - a.Beta2) * g * g;
            m[i] = mi;
            v[i] = vi;
            param[i] = p - a.Lr * (mi / a.BiasCorrection1) / (MathF.Sqrt(vi / a.BiasCorrection2) + a.Eps);
        }
    }
}
