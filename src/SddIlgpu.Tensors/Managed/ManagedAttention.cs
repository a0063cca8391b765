// Causal grouped-query attention on the host without the T×T probabilities: FlashAttention-2 (Dao 2023,
// "FlashAttention-2: Faster Attention with Better Parallelism and Work Partitioning", Algorithms 1 and 2;
// spec/model.md §3 attention). Forward: per (batch, head, query block of 64 rows) an online softmax over key blocks
// of 64, S = q·kᵀ, m = running max, P = exp(S/√HS − m), ℓ = running Σ P, O = O·exp(m_old − m) + P·v; it saves ctx and
// the per-row log-sum-exp L = m + log ℓ (B, NH, T). Backward: D = rowsum(dCtx ⊙ ctx) first, then per block pair
// P = exp(S/√HS − L) recomputed, dV += Pᵀ·dCtx, dP = dCtx·vᵀ, dS = P ⊙ (dP − D)/√HS, dQ += dS·k, dK += dSᵀ·q.
// Work is split by (batch, kv head): one item owns every query head of its group, so dQ, dK and dV are each
// summed by one thread in one fixed order (query head, then query block, then key block): no atomics, and the
// results do not depend on the number of workers. Blocks above the causal diagonal are never visited; inside a
// diagonal block the 4×16 register tiles above it are skipped. Tiles are Vector256 FMA micro-kernels.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Managed;

/// <summary>FlashAttention-2 causal GQA attention (<see cref="AttentionStorage.Fused"/>: saved L and scratch D, both (B, NH, T)).</summary>
internal sealed unsafe class ManagedAttention(Device device) : IAttentionOps
{
    /// <summary>Query and key block size (rows of q, rows of k per tile pass).</summary>
    internal const int Block = 64;

    readonly MaterializedAttention softmax = new(device);
    PinnedBuffer?[] scratch = new PinnedBuffer?[ManagedSimd.Workers];

    /// <summary>Parts the (batch, kv head) items are split into; results never depend on it (tests vary it).</summary>
    internal int Parts { get; set; } = ManagedSimd.Workers;

    public long SavedLength(in AttentionShape s) => AttentionStorage.Fused.SavedLength(s);

    public long ScratchLength(in AttentionShape s) => AttentionStorage.Fused.ScratchLength(s);

    /// <summary>ctx (B, T, NH·HS) and saved = L (B, NH, T), the log-sum-exp of each row of q·kᵀ/√HS over its keys j ≤ t.</summary>
    public void Forward(in AttentionShape s, Tensor q, Tensor k, Tensor v, Tensor saved, Tensor ctx)
    {
        Check(s, q, k, v, ctx, saved, "saved log-sum-exp");
        Begin();
        var sh = s;
        var g = new Geometry(s);
        float* pq = Ptr(q), pk = Ptr(k), pv = Ptr(v), pl = Ptr(saved), pc = Ptr(ctx);
        var parts = Parts;
        Grow(parts, g.ForwardScratch);
        ManagedSimd.ForParts(s.B * s.KVH, parts, (long)s.Rep * s.T * s.T * s.HS, (part, z0, z1) =>
        {
            var buffer = scratch[part]!.Pointer;
            for (var z = z0; z < z1; z++)
                ForwardKvHead(sh, g, z / sh.KVH, z % sh.KVH, pq, pk, pv, pl, pc, buffer);
        });
    }

    /// <summary>dQ, dK, dV overwritten; scratch = D (B, NH, T) = rowsum(dCtx ⊙ ctx); saved is the forward's L.</summary>
    public void Backward(in AttentionShape s, Tensor dCtx, Tensor q, Tensor k, Tensor v, Tensor ctx, Tensor saved, Tensor scratchD,
        Tensor dQ, Tensor dK, Tensor dV)
    {
        Check(s, q, k, v, ctx, saved, "saved log-sum-exp");
        Check(s, dQ, dK, dV, dCtx, scratchD, "scratch D");
        Begin();
        var sh = s;
        var g = new Geometry(s);
        var x = new BackwardPointers(Ptr(dCtx), Ptr(q), Ptr(k), Ptr(v), Ptr(saved), Ptr(scratchD), Ptr(dQ), Ptr(dK), Ptr(dV));
        float* pc = Ptr(ctx);
        var parts = Parts;
        Grow(parts, g.BackwardScratch);
        ManagedSimd.ForParts(s.B * s.KVH, parts, 2L * s.Rep * s.T * s.T * s.HS, (part, z0, z1) =>
        {
            var buffer = scratch[part]!.Pointer;
            for (var z = z0; z < z1; z++)
                BackwardKvHead(sh, g, z / sh.KVH, z % sh.KVH, x, pc, buffer);
        });
    }

    public void CausalSoftmaxForward(Tensor scores, float scale) => softmax.CausalSoftmaxForward(scores, scale);

    public void CausalSoftmaxBackward(Tensor probs, Tensor dProbs, float scale) => softmax.CausalSoftmaxBackward(probs, dProbs, scale);

    /// <summary>Padded sizes of one call: keys to a whole block (LdT), head size to whole 16-float tiles (HSp).</summary>
    readonly struct Geometry(AttentionShape s)
    {
        public readonly int LdT = (s.T + Block - 1) / Block * Block, HSp = (s.HS + 15) / 16 * 16, Blocks = (s.T + Block - 1) / Block;
        readonly int hs = s.HS;

        /// <summary>kT (HS, LdT), vP (LdT, HSp), qB and O (Block, HSp), S (Block, Block), m, ℓ (Block).</summary>
        public long ForwardScratch => (long)hs * LdT + (long)LdT * HSp + 2L * Block * HSp + Block * Block + 2 * Block;

        /// <summary>kT, vT (HS, LdT), kP, dKacc, dVacc (LdT, HSp), qB, dOB, dQacc (Block, HSp), P, dS (Block, Block), L, D (Block).</summary>
        public long BackwardScratch => 2L * hs * LdT + 3L * LdT * HSp + 3L * Block * HSp + 2 * Block * Block + 2 * Block;
    }

    /// <summary>Algorithm 1 for the query heads of kv head g in batch b.</summary>
    static void ForwardKvHead(in AttentionShape s, in Geometry geo, int b, int g, float* q, float* k, float* v, float* lse, float* ctx, float* buffer)
    {
        int T = s.T, HS = s.HS, HSp = geo.HSp, ldT = geo.LdT, ldKv = s.KVH * HS;
        float* kT = buffer, vP = kT + (long)HS * ldT, qB = vP + (long)ldT * HSp, o = qB + Block * HSp, sc = o + Block * HSp,
            m = sc + Block * Block, l = m + Block;
        AttentionKernels.Transpose(k + Row(b, 0, g, s.KVH, T, HS), ldKv, T, HS, kT, ldT);
        CopyPadded(v + Row(b, 0, g, s.KVH, T, HS), ldKv, T, HS, vP, HSp, ldT);
        for (var h = g * s.Rep; h < (g + 1) * s.Rep; h++)
            for (var ib = 0; ib < geo.Blocks; ib++)
            {
                int i0 = ib * Block, valid = Math.Min(Block, T - i0), rows = (valid + 3) & ~3;
                CopyPadded(q + Row(b, i0, h, s.NH, T, HS), s.NH * HS, valid, HS, qB, HSp, rows);
                new Span<float>(o, rows * HSp).Clear();
                for (var jb = 0; jb <= ib; jb++)
                {
                    int j0 = jb * Block, diag = i0 - j0;
                    ProductT(qB, HSp, kT + j0, ldT, HS, sc, rows, diag);
                    for (var r = 0; r < rows; r++)
                    {
                        var row = new Span<float>(sc + r * Block, Block);
                        if (r >= valid)
                        {
                            row.Clear();
                            continue;
                        }
                        var count = Math.Min(Block, diag + r + 1);
                        var live = row[..count];
                        AttentionKernels.Scale(live, s.Scale);
                        var mNew = ManagedSimd.Max(live);
                        if (jb > 0)
                        {
                            mNew = Math.Max(mNew, m[r]);
                            var alpha = ManagedSimd.Exp(m[r] - mNew);
                            l[r] *= alpha;
                            ScaleRow(o + r * HSp, HSp, alpha);
                        }
                        else
                            l[r] = 0f;
                        m[r] = mNew;
                        l[r] += ManagedSimd.ExpShifted(live, mNew, live);
                        row[count..].Clear();
                    }
                    AccumulateProduct(sc, Block, 1, vP + (long)j0 * HSp, HSp, o, HSp, rows, HSp, 0, Block, diag, transposed: false);
                }
                for (var r = 0; r < valid; r++)
                {
                    var inv = 1f / l[r];
                    float* src = o + r * HSp, dst = ctx + Row(b, i0 + r, h, s.NH, T, HS);
                    for (var d = 0; d < HS; d++)
                        dst[d] = src[d] * inv;
                    lse[(long)(b * s.NH + h) * T + i0 + r] = m[r] + MathF.Log(l[r]);
                }
            }
    }

    /// <summary>Algorithm 2 for kv head g in batch b: dK, dV of g and dQ of its query heads, each summed here only.</summary>
    static void BackwardKvHead(in AttentionShape s, in Geometry geo, int b, int g, in BackwardPointers x, float* ctx, float* buffer)
    {
        int T = s.T, HS = s.HS, HSp = geo.HSp, ldT = geo.LdT, ldQ = s.NH * HS, ldKv = s.KVH * HS;
        float* kT = buffer, vT = kT + (long)HS * ldT, kP = vT + (long)HS * ldT, dKacc = kP + (long)ldT * HSp, dVacc = dKacc + (long)ldT * HSp,
            qB = dVacc + (long)ldT * HSp, dOB = qB + Block * HSp, dQacc = dOB + Block * HSp, p = dQacc + Block * HSp, dS = p + Block * Block,
            lRow = dS + Block * Block, dRow = lRow + Block;
        float* kHead = x.K + Row(b, 0, g, s.KVH, T, HS);
        AttentionKernels.Transpose(kHead, ldKv, T, HS, kT, ldT);
        AttentionKernels.Transpose(x.V + Row(b, 0, g, s.KVH, T, HS), ldKv, T, HS, vT, ldT);
        CopyPadded(kHead, ldKv, T, HS, kP, HSp, ldT);
        new Span<float>(dKacc, 2 * ldT * HSp).Clear(); // dKacc and dVacc are adjacent
        for (var h = g * s.Rep; h < (g + 1) * s.Rep; h++)
        {
            var rowsOf = (long)(b * s.NH + h) * T;
            for (var t = 0; t < T; t++)
                x.Scratch[rowsOf + t] = ManagedSimd.Dot(new ReadOnlySpan<float>(x.DCtx + Row(b, t, h, s.NH, T, HS), HS),
                    new ReadOnlySpan<float>(ctx + Row(b, t, h, s.NH, T, HS), HS)); // D, FA-2 Algorithm 2 line 4
            for (var ib = 0; ib < geo.Blocks; ib++)
            {
                int i0 = ib * Block, valid = Math.Min(Block, T - i0), rows = (valid + 3) & ~3;
                CopyPadded(x.Q + Row(b, i0, h, s.NH, T, HS), ldQ, valid, HS, qB, HSp, rows);
                CopyPadded(x.DCtx + Row(b, i0, h, s.NH, T, HS), ldQ, valid, HS, dOB, HSp, rows);
                new Span<float>(dQacc, rows * HSp).Clear();
                for (var r = 0; r < valid; r++)
                {
                    lRow[r] = x.Saved[rowsOf + i0 + r];
                    dRow[r] = x.Scratch[rowsOf + i0 + r];
                }
                for (var jb = 0; jb <= ib; jb++)
                {
                    int j0 = jb * Block, diag = i0 - j0, keys = Math.Min(Block, rows + diag);
                    ProductT(qB, HSp, kT + j0, ldT, HS, p, rows, diag);
                    ProductT(dOB, HSp, vT + j0, ldT, HS, dS, rows, diag);
                    for (var r = 0; r < rows; r++)
                    {
                        var pr = new Span<float>(p + r * Block, Block);
                        var dr = new Span<float>(dS + r * Block, Block);
                        var count = r < valid ? Math.Min(Block, diag + r + 1) : 0;
                        if (count > 0)
                        {
                            var live = pr[..count];
                            AttentionKernels.Scale(live, s.Scale);
                            ManagedSimd.ExpShifted(live, lRow[r], live);
                            DSoftmax(p + r * Block, dS + r * Block, count, dRow[r], s.Scale);
                        }
                        pr[count..].Clear();
                        dr[count..].Clear();
                    }
                    AccumulateProduct(p, 1, Block, dOB, HSp, dVacc + (long)j0 * HSp, HSp, keys, HSp, 0, rows, diag, transposed: true);
                    AccumulateProduct(dS, 1, Block, qB, HSp, dKacc + (long)j0 * HSp, HSp, keys, HSp, 0, rows, diag, transposed: true);
                    AccumulateProduct(dS, Block, 1, kP + (long)j0 * HSp, HSp, dQacc, HSp, rows, HSp, 0, Block, diag, transposed: false);
                }
                for (var r = 0; r < valid; r++)
                    new ReadOnlySpan<float>(dQacc + r * HSp, HS).CopyTo(new Span<float>(x.DQ + Row(b, i0 + r, h, s.NH, T, HS), HS));
            }
        }
        for (var j = 0; j < T; j++)
        {
            new ReadOnlySpan<float>(dKacc + (long)j * HSp, HS).CopyTo(new Span<float>(x.DK + Row(b, j, g, s.KVH, T, HS), HS));
            new ReadOnlySpan<float>(dVacc + (long)j * HSp, HS).CopyTo(new Span<float>(x.DV + Row(b, j, g, s.KVH, T, HS), HS));
        }
    }

    /// <summary>In place: dS[j] = scale·P[j]·(dS[j] − D) for j &lt; n (dS holds dP on entry).</summary>
    static void DSoftmax(float* p, float* dS, int n, float d, float scale)
    {
        var j = 0;
        var vd = Vector256.Create(d);
        var vscale = Vector256.Create(scale);
        for (; j + 8 <= n; j += 8)
            (vscale * Vector256.Load(p + j) * (Vector256.Load(dS + j) - vd)).Store(dS + j);
        for (; j < n; j++)
            dS[j] = scale * p[j] * (dS[j] - d);
    }

    /// <summary>
    /// c[r·Block + j] = Σ_{d &lt; kLen} x[r·ldx + d]·mT[d·ldm + j] for r &lt; rows (a multiple of 4) and j &lt; Block,
    /// in 4×16 tiles, d ascending. A tile whose every entry lies above the causal diagonal (j &gt; r + diag) is skipped
    /// and left as it was.
    /// </summary>
    static void ProductT(float* x, int ldx, float* mT, int ldm, int kLen, float* c, int rows, int diag)
    {
        for (var r0 = 0; r0 < rows; r0 += 4)
        {
            float* x0 = x + r0 * ldx, x1 = x0 + ldx, x2 = x1 + ldx, x3 = x2 + ldx;
            for (var c0 = 0; c0 < Block && c0 <= r0 + 3 + diag; c0 += 16)
            {
                Vector256<float> a00 = default, a01 = default, a10 = default, a11 = default,
                    a20 = default, a21 = default, a30 = default, a31 = default;
                var m = mT + c0;
                for (var d = 0; d < kLen; d++, m += ldm)
                {
                    var b0 = Vector256.Load(m);
                    var b1 = Vector256.Load(m + 8);
                    var w = Vector256.Create(x0[d]);
                    a00 = Vector256.FusedMultiplyAdd(w, b0, a00);
                    a01 = Vector256.FusedMultiplyAdd(w, b1, a01);
                    w = Vector256.Create(x1[d]);
                    a10 = Vector256.FusedMultiplyAdd(w, b0, a10);
                    a11 = Vector256.FusedMultiplyAdd(w, b1, a11);
                    w = Vector256.Create(x2[d]);
                    a20 = Vector256.FusedMultiplyAdd(w, b0, a20);
                    a21 = Vector256.FusedMultiplyAdd(w, b1, a21);
                    w = Vector256.Create(x3[d]);
                    a30 = Vector256.FusedMultiplyAdd(w, b0, a30);
                    a31 = Vector256.FusedMultiplyAdd(w, b1, a31);
                }
                var o = c + r0 * Block + c0;
                a00.Store(o); a01.Store(o + 8);
                a10.Store(o + Block); a11.Store(o + Block + 8);
                a20.Store(o + 2 * Block); a21.Store(o + 2 * Block + 8);
                a30.Store(o + 3 * Block); a31.Store(o + 3 * Block + 8);
            }
        }
    }

    /// <summary>
    /// y[r·ldy + c] += Σ_k w[r·wRow + k·wK]·m[k·ldm + c] for r &lt; rows (a multiple of 4), c &lt; cols (a multiple of 16),
    /// k ascending over [kFrom, kTo) cut to the causal band: k &lt; r + 4 + diag (rows are queries, k keys) or, when
    /// <paramref name="transposed"/>, k ≥ r − diag (rows are keys, k queries). Terms outside the band are zero.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void AccumulateProduct(float* w, nint wRow, nint wK, float* m, int ldm, float* y, int ldy, int rows, int cols,
        int kFrom, int kTo, int diag, bool transposed)
    {
        for (var r0 = 0; r0 < rows; r0 += 4)
        {
            int k0 = transposed ? Math.Max(kFrom, r0 - diag) : kFrom, k1 = transposed ? kTo : Math.Min(kTo, r0 + 4 + diag);
            if (k0 >= k1)
                continue;
            float* w0 = w + r0 * wRow, y0 = y + r0 * ldy;
            for (var c0 = 0; c0 < cols; c0 += 16)
            {
                float* o0 = y0 + c0, o1 = o0 + ldy, o2 = o1 + ldy, o3 = o2 + ldy;
                Vector256<float> a00 = Vector256.Load(o0), a01 = Vector256.Load(o0 + 8), a10 = Vector256.Load(o1), a11 = Vector256.Load(o1 + 8),
                    a20 = Vector256.Load(o2), a21 = Vector256.Load(o2 + 8), a30 = Vector256.Load(o3), a31 = Vector256.Load(o3 + 8);
                var mk = m + (long)k0 * ldm + c0;
                var wk = w0 + k0 * wK;
                for (var k = k0; k < k1; k++, mk += ldm, wk += wK)
                {
                    var b0 = Vector256.Load(mk);
                    var b1 = Vector256.Load(mk + 8);
                    var a = Vector256.Create(wk[0]);
                    a00 = Vector256.FusedMultiplyAdd(a, b0, a00);
                    a01 = Vector256.FusedMultiplyAdd(a, b1, a01);
                    a = Vector256.Create(wk[wRow]);
                    a10 = Vector256.FusedMultiplyAdd(a, b0, a10);
                    a11 = Vector256.FusedMultiplyAdd(a, b1, a11);
                    a = Vector256.Create(wk[2 * wRow]);
                    a20 = Vector256.FusedMultiplyAdd(a, b0, a20);
                    a21 = Vector256.FusedMultiplyAdd(a, b1, a21);
                    a = Vector256.Create(wk[3 * wRow]);
                    a30 = Vector256.FusedMultiplyAdd(a, b0, a30);
                    a31 = Vector256.FusedMultiplyAdd(a, b1, a31);
                }
                a00.Store(o0); a01.Store(o0 + 8); a10.Store(o1); a11.Store(o1 + 8);
                a20.Store(o2); a21.Store(o2 + 8); a30.Store(o3); a31.Store(o3 + 8);
            }
        }
    }

    /// <summary>x[i] *= a for i &lt; n (n a multiple of 16).</summary>
    static void ScaleRow(float* x, int n, float a)
    {
        var va = Vector256.Create(a);
        for (var i = 0; i < n; i += 8)
            (Vector256.Load(x + i) * va).Store(x + i);
    }

    /// <summary>dst (rows, ldDst) = src (count, HS) with row stride ld, zero in columns HS..ldDst and rows count..rows.</summary>
    static void CopyPadded(float* src, int ld, int count, int hs, float* dst, int ldDst, int rows)
    {
        for (var r = 0; r < count; r++)
        {
            new ReadOnlySpan<float>(src + (long)r * ld, hs).CopyTo(new Span<float>(dst + (long)r * ldDst, hs));
            new Span<float>(dst + (long)r * ldDst + hs, ldDst - hs).Clear();
        }
        new Span<float>(dst + (long)count * ldDst, (rows - count) * ldDst).Clear();
    }

    static int Row(int b, int t, int head, int heads, int T, int HS) => ((b * T + t) * heads + head) * HS;

    void Grow(int parts, long length)
    {
        if (scratch.Length < parts)
            Array.Resize(ref scratch, parts);
        for (var p = 0; p < parts; p++)
            if (scratch[p] is not { } a || a.Length < length)
                scratch[p] = new PinnedBuffer(checked((int)length));
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

    static void Check(in AttentionShape s, Tensor q, Tensor k, Tensor v, Tensor ctx, Tensor rows, string rowsName)
    {
        if (s.B < 1 || s.T < 1 || s.HS < 1 || s.KVH < 1 || s.NH % s.KVH != 0)
            throw new ArgumentException($"Attention: invalid shape {s} (KVH must divide NH).");
        long qLen = (long)s.B * s.T * s.NH * s.HS, kvLen = (long)s.B * s.T * s.KVH * s.HS;
        q.ExpectLength(qLen, "Attention q/dQ (B, T, NH·HS)");
        ctx.ExpectLength(qLen, "Attention ctx/dCtx (B, T, NH·HS)");
        k.ExpectLength(kvLen, "Attention k/dK (B, T, KVH·HS)");
        v.ExpectLength(kvLen, "Attention v/dV (B, T, KVH·HS)");
        rows.ExpectLength((long)s.B * s.NH * s.T, $"Attention {rowsName} (B, NH, T)");
    }
}
