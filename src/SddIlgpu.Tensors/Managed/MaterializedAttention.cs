// The managed path's earlier attention, kept (internal) so benchmarks and tests can compare it with the fused
// FlashAttention-2 ManagedAttention: it materialises the probabilities. Causal grouped-query attention on the host, per head (spec §3): scores = q·kᵀ/√HS, causal softmax,
// ctx = P·v; backward dV = Pᵀ·dCtx, dP = dCtx·vᵀ, dS = P⊙(dP − Σ dP·P)/√HS, dQ = dS·k, dK = dSᵀ·q.
// Forward runs per (b, h); backward per (b, kv head), its query heads in order, so dK, dV need no atomics.
// The inner loops are register-blocked (AttentionKernels); every sum runs in one fixed index order.
using System.Runtime.Intrinsics;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Managed;

/// <summary>Attention that saves P (B, NH, T, T) and uses a (B, NH, T, T) scratch for dP / dS (<see cref="AttentionStorage.Materialized"/>).</summary>
internal sealed unsafe class MaterializedAttention(Device device) : IAttentionOps
{
    /// <summary>Per-part (HS, ldT) transposed k or v of one head, grown once to the largest call.</summary>
    readonly PinnedBuffer?[] transposed = new PinnedBuffer?[ManagedSimd.Workers];

    public long SavedLength(in AttentionShape s) => AttentionStorage.Materialized.SavedLength(s);

    public long ScratchLength(in AttentionShape s) => AttentionStorage.Materialized.ScratchLength(s);

    public void Forward(in AttentionShape s, Tensor q, Tensor k, Tensor v, Tensor probs, Tensor ctx)
    {
        Check(s, q, k, v, probs, ctx);
        Begin();
        var sh = s;
        var ldT = (s.T + 7) / 8 * 8;
        ManagedSimd.ForParts(s.B * s.NH, ManagedSimd.Workers, (long)s.T * s.T * s.HS, (part, z0, z1) =>
        {
            var kT = Scratch(part, sh.HS * ldT);
            for (var z = z0; z < z1; z++)
                ForwardHead(sh, z / sh.NH, z % sh.NH, Ptr(q), Ptr(k), Ptr(v), probs.HostSpan(), Ptr(ctx), kT, ldT);
        });
    }

    static void ForwardHead(in AttentionShape s, int b, int h, float* q, float* k, float* v, Span<float> probs, float* ctx, float* kT, int ldT)
    {
        int T = s.T, HS = s.HS, g = h / s.Rep;
        AttentionKernels.Transpose(k + Row(b, 0, g, s.KVH, T, HS), s.KVH * HS, T, HS, kT, ldT);
        var vHead = v + Row(b, 0, g, s.KVH, T, HS);
        for (var t = 0; t < T; t++)
        {
            var row = probs.Slice(((b * s.NH + h) * T + t) * T, T);
            fixed (float* pr = row)
            {
                AttentionKernels.ScoresRow(q + Row(b, t, h, s.NH, T, HS), HS, kT, ldT, t + 1, pr);
                AttentionKernels.SoftmaxRow(row, t, s.Scale);
                AttentionKernels.CombineRows(pr, 1, t + 1, vHead, s.KVH * HS, HS, ctx + Row(b, t, h, s.NH, T, HS), add: false);
            }
        }
    }

    public void Backward(in AttentionShape s, Tensor dCtx, Tensor q, Tensor k, Tensor v, Tensor ctx, Tensor probs, Tensor dProbs,
        Tensor dQ, Tensor dK, Tensor dV)
    {
        Check(s, q, k, v, probs, dCtx);
        Check(s, dQ, dK, dV, dProbs, dCtx);
        Begin();
        var sh = s;
        var ldT = (s.T + 7) / 8 * 8;
        ManagedSimd.ForParts(s.B * s.KVH, ManagedSimd.Workers, 2L * s.Rep * s.T * s.T * s.HS, (part, z0, z1) =>
        {
            var vT = Scratch(part, sh.HS * ldT);
            var ptrs = new BackwardPointers(Ptr(dCtx), Ptr(q), Ptr(k), Ptr(v), Ptr(probs), Ptr(dProbs), Ptr(dQ), Ptr(dK), Ptr(dV));
            for (var z = z0; z < z1; z++)
                BackwardKvHead(sh, z / sh.KVH, z % sh.KVH, ptrs, vT, ldT);
        });
    }

    /// <summary>
    /// For kv head g of batch b: per query head h and row t, dP = dCtx_t·vᵀ, dS = P⊙(dP − Σ dP·P)·scale (kept in
    /// dProbs), dQ_t = Σ_j dS_tj·k_j; then per key j, dV_j = Σ_h Σ_{t≥j} P_tj·dCtx_t and dK_j = Σ_h Σ_{t≥j} dS_tj·q_t.
    /// </summary>
    static void BackwardKvHead(in AttentionShape s, int b, int g, in BackwardPointers x, float* vT, int ldT)
    {
        int T = s.T, HS = s.HS, ldQ = s.NH * HS, ldKv = s.KVH * HS;
        float* kHead = x.K + Row(b, 0, g, s.KVH, T, HS), dkHead = x.DK + Row(b, 0, g, s.KVH, T, HS), dvHead = x.DV + Row(b, 0, g, s.KVH, T, HS);
        AttentionKernels.Transpose(x.V + Row(b, 0, g, s.KVH, T, HS), ldKv, T, HS, vT, ldT);
        for (var h = g * s.Rep; h < (g + 1) * s.Rep; h++)
            for (var t = 0; t < T; t++)
            {
                var p = x.Saved + ((long)(b * s.NH + h) * T + t) * T;
                var dS = x.Scratch + ((long)(b * s.NH + h) * T + t) * T;
                AttentionKernels.ScoresRow(x.DCtx + Row(b, t, h, s.NH, T, HS), HS, vT, ldT, t + 1, dS); // dP[j] = dCtx_t · v_j
                var dot = ManagedSimd.Dot(new ReadOnlySpan<float>(dS, t + 1), new ReadOnlySpan<float>(p, t + 1));
                DSoftmax(p, dS, t + 1, dot, s.Scale);
                new Span<float>(dS + t + 1, T - t - 1).Clear();
                AttentionKernels.CombineRows(dS, 1, t + 1, kHead, ldKv, HS, x.DQ + Row(b, t, h, s.NH, T, HS), add: false);
            }
        for (var j = 0; j < T; j++)
            for (var h = g * s.Rep; h < (g + 1) * s.Rep; h++)
            {
                var column = (long)(b * s.NH + h) * T * T + (long)j * T + j; // (t = j, j), then down the rows
                AttentionKernels.CombineRows(x.Saved + column, T, T - j, x.DCtx + Row(b, j, h, s.NH, T, HS), ldQ, HS, dvHead + (long)j * ldKv, add: h > g * s.Rep);
                AttentionKernels.CombineRows(x.Scratch + column, T, T - j, x.Q + Row(b, j, h, s.NH, T, HS), ldQ, HS, dkHead + (long)j * ldKv, add: h > g * s.Rep);
            }
    }

    /// <summary>dS[j] = scale·p[j]·(dS[j] − dot) for j &lt; n.</summary>
    static void DSoftmax(float* p, float* dS, int n, float dot, float scale)
    {
        var j = 0;
        var vdot = Vector256.Create(dot);
        var vscale = Vector256.Create(scale);
        for (; j + 8 <= n; j += 8)
            (vscale * Vector256.Load(p + j) * (Vector256.Load(dS + j) - vdot)).Store(dS + j);
        for (; j < n; j++)
            dS[j] = scale * p[j] * (dS[j] - dot);
    }

    public void CausalSoftmaxForward(Tensor scores, float scale)
    {
        var (rows, T) = Square(scores, "CausalSoftmaxForward");
        Begin();
        ManagedSimd.Rows(rows, 4L * T, (r0, r1) =>
        {
            var sc = scores.HostSpan();
            for (var r = r0; r < r1; r++)
                AttentionKernels.SoftmaxRow(sc.Slice(r * T, T), r % T, scale);
        });
    }

    public void CausalSoftmaxBackward(Tensor probs, Tensor dProbs, float scale)
    {
        var (rows, T) = Square(probs, "CausalSoftmaxBackward");
        ManagedElementwise.SameLength(probs, dProbs, "CausalSoftmaxBackward");
        Begin();
        ManagedSimd.Rows(rows, 4L * T, (r0, r1) =>
        {
            ReadOnlySpan<float> ps = probs.HostSpan();
            var dps = dProbs.HostSpan();
            for (var r = r0; r < r1; r++)
            {
                int t = r % T;
                var p = ps.Slice(r * T, T);
                var d = dps.Slice(r * T, T);
                var dot = 0f;
                for (var j = 0; j <= t; j++)
                    dot += d[j] * p[j];
                for (var j = 0; j <= t; j++)
                    d[j] = scale * p[j] * (d[j] - dot);
                d[(t + 1)..].Clear();
            }
        });
    }

    static int Row(int b, int t, int head, int heads, int T, int HS) => ((b * T + t) * heads + head) * HS;

    float* Scratch(int part, int length)
    {
        if (transposed[part] is not { } a || a.Length < length)
            transposed[part] = a = new PinnedBuffer(length);
        return a.Pointer;
    }

    static float* Ptr(Tensor t)
    {
        fixed (float* p = t.HostSpan())
            return p; // arena memory is ILGPU's unmanaged CPU buffer: the pointer stays valid
    }

    void Begin()
    {
        device.ThrowIfDisposed();
        device.Counters.CountLaunch();
    }

    static (int Rows, int T) Square(Tensor scores, string op)
    {
        var T = scores.Shape.Last;
        if (scores.Length % ((long)T * T) != 0)
            throw new ArgumentException($"{op}: {scores.Name} {scores.Shape} must be (Z, T, T).");
        return ((int)(scores.Length / T), T);
    }

    static void Check(in AttentionShape s, Tensor q, Tensor k, Tensor v, Tensor probs, Tensor ctx)
    {
        if (s.B < 1 || s.T < 1 || s.HS < 1 || s.KVH < 1 || s.NH % s.KVH != 0)
            throw new ArgumentException($"Attention: invalid shape {s} (KVH must divide NH).");
        long qLen = (long)s.B * s.T * s.NH * s.HS, kvLen = (long)s.B * s.T * s.KVH * s.HS;
        q.ExpectLength(qLen, "Attention q/dQ (B, T, NH·HS)");
        ctx.ExpectLength(qLen, "Attention ctx/dCtx (B, T, NH·HS)");
        k.ExpectLength(kvLen, "Attention k/dK (B, T, KVH·HS)");
        v.ExpectLength(kvLen, "Attention v/dV (B, T, KVH·HS)");
        probs.ExpectLength((long)s.B * s.NH * s.T * s.T, "Attention probs/dProbs (B, NH, T, T)");
    }
}

/// <summary>
/// Host pointers of the attention backward's tensors (one struct, so the per-head method stays short). Saved and
/// Scratch are P and dP/dS (B, NH, T, T) for the materialised attention, L and D (B, NH, T) for the fused one.
/// </summary>
internal readonly unsafe struct BackwardPointers(float* dCtx, float* q, float* k, float* v, float* saved, float* scratch, float* dQ, float* dK, float* dV)
{
    public readonly float* DCtx = dCtx, Q = q, K = k, V = v, Saved = saved, Scratch = scratch, DQ = dQ, DK = dK, DV = dV;
}
