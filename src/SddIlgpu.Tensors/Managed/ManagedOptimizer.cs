// AdamW over a flat arena on the host (spec §6, torch.optim.AdamW): clip scale from ‖g‖² = gradSumSquares[0],
// decoupled decay p·(1 − lr·wd·mask), moments, bias-corrected step. Vectorised; the vector and scalar
// paths do the same float ops, so every element's bits are independent of where it falls.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Managed;

internal sealed class ManagedOptimizer(Device device) : IOptimizerOps
{
    public void AdamW(in AdamWStep step, Tensor param, Tensor grad, Tensor m, Tensor v, Tensor decayMask, Tensor gradSumSquares)
    {
        var scale = Begin(device, step, param, grad, m, v, decayMask, gradSumSquares);
        var s = step;
        var n = ManagedReduction.IntLength(param, "AdamW");
        ManagedSimd.Rows(n, 16, (i0, i1) =>
            Update(s, scale, param.HostSpan()[i0..i1], grad.HostSpan()[i0..i1], m.HostSpan()[i0..i1], v.HostSpan()[i0..i1], decayMask.HostSpan()[i0..i1]));
    }

    /// <summary>Checks the operands, counts the launch and returns the clip scale min(1, clip/(‖g‖ + 1e-6)) (1 without clipping).</summary>
    internal static float Begin(Device device, in AdamWStep step, Tensor param, Tensor grad, Tensor m, Tensor v, Tensor decayMask, Tensor gradSumSquares)
    {
        foreach (var t in new[] { grad, m, v, decayMask })
            ManagedElementwise.SameLength(param, t, "AdamW");
        if (gradSumSquares.Length < 1)
            throw new ArgumentException($"AdamW: {gradSumSquares.Name} must hold ‖g‖² at index 0.");
        device.ThrowIfDisposed();
        device.Counters.CountLaunch();
        return step.GradClip > 0f ? MathF.Min(1f, step.GradClip / (MathF.Sqrt(gradSumSquares.HostSpan()[0]) + 1e-6f)) : 1f;
    }

    // Called once per parameter tensor per step: tiered compilation would run it unoptimised, then as on-stack-
    // replaced or instrumented code, for the first 30+ steps (docs/perf.md, session 7).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Update(in AdamWStep s, float scale, Span<float> p, ReadOnlySpan<float> grad, Span<float> m, Span<float> v, ReadOnlySpan<float> mask)
    {
        ref var rp = ref MemoryMarshal.GetReference(p);
        ref var rg = ref MemoryMarshal.GetReference(grad);
        ref var rm = ref MemoryMarshal.GetReference(m);
        ref var rv = ref MemoryMarshal.GetReference(v);
        ref var rk = ref MemoryMarshal.GetReference(mask);
        float lrWd = s.Lr * s.WeightDecay, b1c = 1f - s.Beta1, b2c = 1f - s.Beta2;
        var i = 0;
        for (; i + 8 <= p.Length; i += 8)
        {
            var u = (nuint)i;
            var g = Vector256.LoadUnsafe(ref rg, u) * Vector256.Create(scale);
            var pi = Vector256.LoadUnsafe(ref rp, u) * (Vector256<float>.One - Vector256.Create(lrWd) * Vector256.LoadUnsafe(ref rk, u));
            var mi = Vector256.Create(s.Beta1) * Vector256.LoadUnsafe(ref rm, u) + Vector256.Create(b1c) * g;
            var vi = Vector256.Create(s.Beta2) * Vector256.LoadUnsafe(ref rv, u) + Vector256.Create(b2c) * (g * g);
            var denom = Vector256.Sqrt(vi / Vector256.Create(s.BiasCorrection2)) + Vector256.Create(s.Eps);
            pi -= Vector256.Create(s.Lr) * (mi / Vector256.Create(s.BiasCorrection1)) / denom;
            pi.StoreUnsafe(ref rp, u);
            mi.StoreUnsafe(ref rm, u);
            vi.StoreUnsafe(ref rv, u);
        }
        for (; i < p.Length; i++)
        {
            var g = grad[i] * scale;
            var pi = p[i] * (1f - lrWd * mask[i]);
            m[i] = s.Beta1 * m[i] + b1c * g;
            v[i] = s.Beta2 * v[i] + b2c * (g * g);
            var denom = MathF.Sqrt(v[i] / s.BiasCorrection2) + s.Eps;
            p[i] = pi - s.Lr * (m[i] / s.BiasCorrection1) / denom;
        }
    }
}
