// Causal grouped-query attention on the host without the T×T probabilities: FlashAttention-2 (Dao 2023,
// "FlashAttention-2: Faster Attention with Better Parallelism and Work Partitioning", Algorithms 1 and 2;
// spec/model.md §3 attention). Forward: per (batch, head, query block of 64 rows) an online softmax over key blocks
// of up to 256 keys, S = (q/√HS)·kᵀ, m = running max, P = exp(S − m), ℓ = running Σ P, O = O·exp(m_old − m) + P·v; it
// saves ctx and the per-row log-sum-exp L = m + log ℓ (B, NH, T). Backward: D = rowsum(dCtx ⊙ ctx) first, then per
// (query block, key block) P = exp(S − L) recomputed, dV += Pᵀ·dCtx, dP = dCtx·vᵀ, dS = P ⊙ (dP − D)/√HS,
// dQ += dS·k, dK += dSᵀ·q. Work is split by (batch, kv head): one item owns every query head of its group, so dQ,
// dK and dV are each summed by one thread in one fixed order (query head, then query block, then key block): no
// atomics, and the results do not depend on the number of workers. The 1/√HS scale rides on the transposed keys
// (S = q·(k/√HS)ᵀ, in the forward and in the backward's recompute alike), so q, k, v and dCtx are read where they
// lie (rows one (B, T, H·HS) stride apart) and dQ, dK, dV are summed where they lie: no head-row copies in or out,
// whose copy loop had 5.2 % of an attention bench's samples against 17 % for the micro-kernels (perf.md, issue 14
// session 10). A head size that does not fill whole NR-column tiles, or a last query block whose MR-row tiles
// would read past the tensor, takes zero-padded copies instead; the products' k orders are the same either way.
// Every product runs on ManagedGemm's register micro-kernel (AVX-512 8×32 or AVX2 6×16 tiles, each element's k-sum
// in one fixed order); key blocks above the causal diagonal are never visited, and inside a block the tiles above it
// are skipped and the products cut to the causal band. A key block of 256 keys is one online-softmax step for every query of baby-gpt's T = 256.
// The per-item loops and AttentionKernels are [AggressiveOptimization], as ManagedGemm's are: a profile of the
// attention bench found CombineRows and ScoresRow still in tier-0 code after its warm-up (docs/perf.md, session 7).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Managed;

/// <summary>FlashAttention-2 causal GQA attention (<see cref="AttentionStorage.Fused"/>: saved L and scratch D, both (B, NH, T)).</summary>
internal sealed unsafe class ManagedAttention : IAttentionOps
{
    /// <summary>Query rows per block (FA-2's B_r).</summary>
    internal const int QueryBlock = 64;

    /// <summary>Keys per online-softmax step (FA-2's B_c): the P and dS blocks (64 × 256 floats each) stay in L2.</summary>
    internal const int KeyBlock = 256;

    readonly Device device;
    readonly GemmMicroKernel micro;
    readonly MaterializedAttention softmax;
    readonly PinnedBuffer?[] scratch = new PinnedBuffer?[ManagedSimd.Workers];

    public ManagedAttention(Device device) : this(device, GemmMicroKernel.Best())
    {
    }

    /// <summary>Attention on a given micro-kernel (tests run the AVX2 6×16 one on AVX-512 hardware too).</summary>
    internal ManagedAttention(Device device, GemmMicroKernel micro)
    {
        this.device = device;
        this.micro = micro;
        softmax = new MaterializedAttention(device);
    }

    /// <summary>
    /// Chunks the (batch, kv head) items are split into, claimed by the workers in turn (null: one per item, so a
    /// late worker's share goes to the others); results never depend on it (tests vary it).
    /// </summary>
    internal int? Chunks { get; set; }

    public long SavedLength(in AttentionShape s) => AttentionStorage.Fused.SavedLength(s);

    public long ScratchLength(in AttentionShape s) => AttentionStorage.Fused.ScratchLength(s);

    /// <summary>ctx (B, T, NH·HS) and saved = L (B, NH, T), the log-sum-exp of each row of q·kᵀ/√HS over its keys j ≤ t.</summary>
    public void Forward(in AttentionShape s, Tensor q, Tensor k, Tensor v, Tensor saved, Tensor ctx)
    {
        Check(s, q, k, v, ctx, saved, "saved log-sum-exp");
        Begin();
        var sh = s;
        var g = new Geometry(s, micro);
        float* pq = Ptr(q), pk = Ptr(k), pv = Ptr(v), pl = Ptr(saved), pc = Ptr(ctx);
        Grow(g.ForwardScratch);
        ManagedSimd.ForChunks(s.B * s.KVH, Chunks ?? s.B * s.KVH, (long)s.Rep * s.T * s.T * s.HS, (worker, z0, z1) =>
        {
            var buffer = scratch[worker]!.Pointer;
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
        var g = new Geometry(s, micro);
        var x = new BackwardPointers(Ptr(dCtx), Ptr(q), Ptr(k), Ptr(v), Ptr(saved), Ptr(scratchD), Ptr(dQ), Ptr(dK), Ptr(dV));
        float* pc = Ptr(ctx);
        Grow(g.BackwardScratch);
        ManagedSimd.ForChunks(s.B * s.KVH, Chunks ?? s.B * s.KVH, 2L * s.Rep * s.T * s.T * s.HS, (worker, z0, z1) =>
        {
            var buffer = scratch[worker]!.Pointer;
            for (var z = z0; z < z1; z++)
                BackwardKvHead(sh, g, z / sh.KVH, z % sh.KVH, x, pc, buffer);
        });
    }

    public void CausalSoftmaxForward(Tensor scores, float scale) => softmax.CausalSoftmaxForward(scores, scale);

    public void CausalSoftmaxBackward(Tensor probs, Tensor dProbs, float scale) => softmax.CausalSoftmaxBackward(probs, dProbs, scale);

    /// <summary>
    /// Padded sizes of one call. Transposed k and v (HS, LdT): keys to whole 16-float vectors plus one cache line, so
    /// the HS rows a tile walks do not share a few L1 sets. Copied head rows (HSn): HS to whole NR-column tiles. Score
    /// rows (LdS): a key block plus MR columns (a transposed tile reads MR of them), plus a line. Copied query blocks
    /// get MR spare rows, which a tile reads past the last one.
    /// </summary>
    readonly struct Geometry
    {
        public readonly int LdT, HSn, LdS, Rows, MR, NR;

        /// <summary>HS fills whole NR-column tiles, so head rows can be a product's B operand where they lie.</summary>
        public readonly bool WholeTiles;

        readonly int hs;
        readonly long tokens;

        public Geometry(in AttentionShape s, GemmMicroKernel micro)
        {
            (MR, NR, hs) = (micro.MR, micro.NR, s.HS);
            LdT = (s.T + 15) / 16 * 16 + 16;
            HSn = (s.HS + NR - 1) / NR * NR;
            LdS = (KeyBlock + MR + 15) / 16 * 16 + 16;
            Rows = QueryBlock + MR;
            WholeTiles = s.HS % NR == 0;
            tokens = (long)s.B * s.T;
        }

        /// <summary>
        /// Whether the <paramref name="valid"/> rows from token (b, t0) can be an A operand where they lie: the last
        /// MR-row tile reads up to MR − 1 rows past them (its results discarded), which must still be inside the tensor.
        /// </summary>
        public bool RowsInside(int b, int T, int t0, int valid) => (long)b * T + t0 + (valid + MR - 1) / MR * MR <= tokens;

        /// <summary>kT (HS, LdT), vP (LdT, HSn), qB and O (Rows, HSn), S (Rows, LdS), m, ℓ (QueryBlock); vP and qB serve the copy path only.</summary>
        public long ForwardScratch => (long)hs * LdT + (long)LdT * HSn + 2L * Rows * HSn + (long)Rows * LdS + 2 * QueryBlock;

        /// <summary>kT, vT (HS, LdT), kP (LdT, HSn), qB, dOB (Rows, HSn), P, dS (Rows, LdS), L, D (QueryBlock); kP, qB and dOB serve the copy path only.</summary>
        public long BackwardScratch => 2L * hs * LdT + (long)LdT * HSn + 2L * Rows * HSn + 2L * Rows * LdS + 2 * QueryBlock;
    }

    /// <summary>Algorithm 1 for the query heads of kv head g in batch b.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    void ForwardKvHead(in AttentionShape s, in Geometry geo, int b, int g, float* q, float* k, float* v, float* lse, float* ctx, float* buffer)
    {
        int T = s.T, HS = s.HS, HSn = geo.HSn, ldT = geo.LdT, ldS = geo.LdS, ldQ = s.NH * HS, ldKv = s.KVH * HS;
        float* kT = buffer, vP = kT + (long)HS * ldT, qB = vP + (long)ldT * HSn, o = qB + geo.Rows * HSn, sc = o + geo.Rows * HSn,
            m = sc + (long)geo.Rows * ldS, l = m + QueryBlock;
        TransposeScaled(s, k + Row(b, 0, g, s.KVH, T, HS), ldKv, kT, ldT); // S = q·(k/√HS)ᵀ, as the backward recomputes it
        var vRows = Operand(v + Row(b, 0, g, s.KVH, T, HS), ldKv, T, HS, vP, HSn, ldT, geo.WholeTiles, out var ldV);
        for (var h = g * s.Rep; h < (g + 1) * s.Rep; h++)
            for (var i0 = 0; i0 < T; i0 += QueryBlock)
            {
                int valid = Math.Min(QueryBlock, T - i0), keysEnd = i0 + valid;
                var qRows = Operand(q + Row(b, i0, h, s.NH, T, HS), ldQ, valid, HS, qB, HSn, geo.Rows, geo.RowsInside(b, T, i0, valid), out var ldQB);
                for (var s0 = 0; s0 < keysEnd; s0 += KeyBlock)
                {
                    var keys = Math.Min(KeyBlock, keysEnd - s0);
                    Scores(geo, qRows, ldQB, kT + s0, i0 - s0, valid, keys, HS, sc);
                    for (var r = 0; r < valid; r++)
                    {
                        var row = sc + (long)r * ldS;
                        var count = Math.Min(keys, i0 + r + 1 - s0); // ≥ 1: key blocks start at multiples of 256, query blocks of 64
                        var mNew = AttentionKernels.RowMax(row, count);
                        if (s0 > 0)
                        {
                            mNew = Math.Max(mNew, m[r]);
                            var alpha = ManagedSimd.Exp(m[r] - mNew);
                            l[r] *= alpha;
                            AttentionKernels.Scale(new Span<float>(o + r * HSn, HSn), alpha);
                        }
                        else
                            l[r] = 0f;
                        m[r] = mNew;
                        l[r] += AttentionKernels.ExpRow(row, count, mNew, keys); // P·v reads keys [count, kc) of the row: zeros
                    }
                    // O (+)= P·v over the block's keys, each row group cut to its causal band.
                    for (var r0 = 0; r0 < valid; r0 += geo.MR)
                    {
                        int rows = Math.Min(geo.MR, valid - r0), kc = Math.Min(keys, i0 + r0 + rows - s0);
                        for (var c0 = 0; c0 < HS; c0 += geo.NR)
                            micro.Run(sc + (long)r0 * ldS, 1, ldS, vRows + (long)s0 * ldV + c0, ldV, kc, o + r0 * HSn + c0, HSn,
                                rows, Math.Min(geo.NR, HS - c0), 1f, s0 == 0 ? 0f : 1f);
                    }
                }
                for (var r = 0; r < valid; r++)
                {
                    AttentionKernels.PrefetchRow(ctx + Row(b, i0 + r + AttentionKernels.PrefetchRows, h, s.NH, T, HS), HS);
                    var inv = 1f / l[r];
                    float* src = o + r * HSn, dst = ctx + Row(b, i0 + r, h, s.NH, T, HS);
                    ManagedElementwise.ScaleRange(new ReadOnlySpan<float>(src, HS), inv, new Span<float>(dst, HS));
                    lse[(long)(b * s.NH + h) * T + i0 + r] = m[r] + MathF.Log(l[r]);
                }
            }
    }

    /// <summary>
    /// Algorithm 2 for kv head g in batch b: dK, dV of g and dQ of its query heads, each summed where it lies and here
    /// only. A key row group's first product (query head g·Rep, the query block holding its keys) writes its dK and dV
    /// tiles and later ones add (or all add to cleared rows, see firstWrites); a query block's first key block writes
    /// its dQ rows, later ones add.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    void BackwardKvHead(in AttentionShape s, in Geometry geo, int b, int g, in BackwardPointers x, float* ctx, float* buffer)
    {
        int T = s.T, HS = s.HS, HSn = geo.HSn, ldT = geo.LdT, ldS = geo.LdS, ldQ = s.NH * HS, ldKv = s.KVH * HS, MR = geo.MR, NR = geo.NR;
        float* kT = buffer, vT = kT + (long)HS * ldT, kP = vT + (long)HS * ldT, qB = kP + (long)ldT * HSn, dOB = qB + geo.Rows * HSn,
            p = dOB + geo.Rows * HSn, dS = p + (long)geo.Rows * ldS, lRow = dS + (long)geo.Rows * ldS, dRow = lRow + QueryBlock;
        float* kHead = x.K + Row(b, 0, g, s.KVH, T, HS), dK = x.DK + Row(b, 0, g, s.KVH, T, HS), dV = x.DV + Row(b, 0, g, s.KVH, T, HS);
        TransposeScaled(s, kHead, ldKv, kT, ldT);
        AttentionKernels.Transpose(x.V + Row(b, 0, g, s.KVH, T, HS), ldKv, T, HS, vT, ldT);
        var kRows = Operand(kHead, ldKv, T, HS, kP, HSn, ldT, geo.WholeTiles, out var ldK);
        // A key row group lies in one query block when MR divides the block (8 does 64): its first product can write
        // it. A group that straddles two (the 6-row AVX2 tiles) gets rows from both, so dK and dV start cleared instead.
        var firstWrites = QueryBlock % MR == 0;
        if (!firstWrites)
            for (var j = 0; j < T; j++)
            {
                new Span<float>(dK + (long)j * ldKv, HS).Clear();
                new Span<float>(dV + (long)j * ldKv, HS).Clear();
            }
        for (var h = g * s.Rep; h < (g + 1) * s.Rep; h++)
        {
            var rowsOf = (long)(b * s.NH + h) * T;
            for (var t = 0; t < T; t++)
            {
                AttentionKernels.PrefetchRow(x.DCtx + Row(b, t + AttentionKernels.PrefetchRows, h, s.NH, T, HS), HS);
                AttentionKernels.PrefetchRow(ctx + Row(b, t + AttentionKernels.PrefetchRows, h, s.NH, T, HS), HS);
                x.Scratch[rowsOf + t] = ManagedSimd.Dot(new ReadOnlySpan<float>(x.DCtx + Row(b, t, h, s.NH, T, HS), HS),
                    new ReadOnlySpan<float>(ctx + Row(b, t, h, s.NH, T, HS), HS)); // D, FA-2 Algorithm 2 line 4
            }
            for (var i0 = 0; i0 < T; i0 += QueryBlock)
            {
                int valid = Math.Min(QueryBlock, T - i0), keysEnd = i0 + valid;
                // q and dO are each an A operand (of S, dP) and a B operand (of dK, dV).
                var inPlace = geo.WholeTiles && geo.RowsInside(b, T, i0, valid);
                var qRows = Operand(x.Q + Row(b, i0, h, s.NH, T, HS), ldQ, valid, HS, qB, HSn, geo.Rows, inPlace, out var ldQB);
                var dORows = Operand(x.DCtx + Row(b, i0, h, s.NH, T, HS), ldQ, valid, HS, dOB, HSn, geo.Rows, inPlace, out var ldOB);
                var dQ = x.DQ + Row(b, i0, h, s.NH, T, HS);
                for (var r = 0; r < valid; r++)
                {
                    lRow[r] = x.Saved[rowsOf + i0 + r];
                    dRow[r] = x.Scratch[rowsOf + i0 + r];
                }
                for (var s0 = 0; s0 < keysEnd; s0 += KeyBlock)
                {
                    var keys = Math.Min(KeyBlock, keysEnd - s0);
                    Scores(geo, qRows, ldQB, kT + s0, i0 - s0, valid, keys, HS, p); // the forward's S, bit for bit
                    Scores(geo, dORows, ldOB, vT + s0, i0 - s0, valid, keys, HS, dS);
                    for (var r = 0; r < valid; r++) // the products below read keys [count, keys) of a row: zeros
                        AttentionKernels.SoftmaxBackwardRow(p + (long)r * ldS, dS + (long)r * ldS, Math.Min(keys, i0 + r + 1 - s0),
                            lRow[r], dRow[r], s.Scale, keys);
                    // dV (+)= Pᵀ·dO and dK (+)= dSᵀ·q: rows are the block's keys, k the queries at or after each key group.
                    for (var j0 = 0; j0 < keys; j0 += MR)
                    {
                        int rStart = Math.Max(0, s0 + j0 - i0), kc = valid - rStart, rows = Math.Min(MR, keys - j0);
                        if (kc <= 0)
                            break;
                        var beta = firstWrites && h == g * s.Rep && s0 + j0 >= i0 ? 0f : 1f; // the group's first product
                        for (var c0 = 0; c0 < HS; c0 += NR)
                        {
                            var cols = Math.Min(NR, HS - c0);
                            micro.Run(p + (long)rStart * ldS + j0, ldS, 1, dORows + (long)rStart * ldOB + c0, ldOB, kc, dV + (long)(s0 + j0) * ldKv + c0, ldKv,
                                rows, cols, 1f, beta);
                            micro.Run(dS + (long)rStart * ldS + j0, ldS, 1, qRows + (long)rStart * ldQB + c0, ldQB, kc, dK + (long)(s0 + j0) * ldKv + c0, ldKv,
                                rows, cols, 1f, beta);
                        }
                    }
                    // dQ (+)= dS·k, each row group cut to its causal band.
                    for (var r0 = 0; r0 < valid; r0 += MR)
                    {
                        int rows = Math.Min(MR, valid - r0), kc = Math.Min(keys, i0 + r0 + rows - s0);
                        for (var c0 = 0; c0 < HS; c0 += NR)
                            micro.Run(dS + (long)r0 * ldS, 1, ldS, kRows + (long)s0 * ldK + c0, ldK, kc, dQ + (long)r0 * ldQ + c0, ldQ,
                                rows, Math.Min(NR, HS - c0), 1f, s0 == 0 ? 0f : 1f);
                    }
                }
            }
        }
    }

    /// <summary>kT (HS, ldT) = (k/√HS)ᵀ for the T keys of one head (row stride ld), zero past T.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void TransposeScaled(in AttentionShape s, float* k, int ld, float* kT, int ldT)
    {
        AttentionKernels.Transpose(k, ld, s.T, s.HS, kT, ldT);
        AttentionKernels.Scale(new Span<float>(kT, s.HS * ldT), s.Scale);
    }

    /// <summary>
    /// Rows [0, count) of a head (row stride ld) as a product's operand, with its row stride: where they lie when
    /// <paramref name="inPlace"/>, else copied to dst (row stride ldDst, zero-padded to <paramref name="rows"/> rows).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static float* Operand(float* src, int ld, int count, int hs, float* dst, int ldDst, int rows, bool inPlace, out int ldOut)
    {
        if (inPlace)
        {
            ldOut = ld;
            return src;
        }
        CopyPadded(src, ld, count, hs, dst, ldDst, rows);
        ldOut = ldDst;
        return dst;
    }

    /// <summary>
    /// c[r·LdS + j] = Σ_{d &lt; HS} x[r·ldx + d]·mT[d·LdT + j] for r &lt; rows and j &lt; keys, in micro-kernel tiles
    /// (column tiles outer, so one mT panel stays in L1 across the row groups). A tile whose every key lies after
    /// every query of its rows (key j &gt; r + diag, diag = query block start − key block start) is skipped: those
    /// entries are left as they were and never read.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    void Scores(in Geometry geo, float* x, int ldx, float* mT, int diag, int rows, int keys, int hs, float* c)
    {
        int MR = geo.MR, NR = geo.NR;
        for (var c0 = 0; c0 < keys; c0 += NR)
            for (var r0 = Math.Max(0, c0 - diag) / MR * MR; r0 < rows; r0 += MR)
                micro.Run(x + (long)r0 * ldx, 1, ldx, mT + c0, geo.LdT, hs, c + (long)r0 * geo.LdS + c0, geo.LdS,
                    Math.Min(MR, rows - r0), Math.Min(NR, keys - c0), 1f, 0f);
    }

    /// <summary>dst (rows, ldDst) = src (count, HS) with row stride ld, zero in columns HS..ldDst and rows count..rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void CopyPadded(float* src, int ld, int count, int hs, float* dst, int ldDst, int rows)
    {
        for (var r = 0; r < count; r++)
        {
            AttentionKernels.PrefetchRow(src + (long)(r + AttentionKernels.PrefetchRows) * ld, hs);
            var row = dst + (long)r * ldDst;
            Copy(src + (long)r * ld, row, hs);
            for (var j = hs; j < ldDst; j++)
                row[j] = 0f;
        }
        new Span<float>(dst + (long)count * ldDst, (rows - count) * ldDst).Clear();
    }

    /// <summary>
    /// dst[i] = src[i] for i &lt; n, in 8-float vectors (a head row is 64 floats: inline copies, not a Memmove call
    /// per row, which cost 10 % of the fused attention's time).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Copy(float* src, float* dst, int n)
    {
        var i = 0;
        for (; i + 8 <= n; i += 8)
            Vector256.Load(src + i).Store(dst + i);
        for (; i < n; i++)
            dst[i] = src[i];
    }

    static int Row(int b, int t, int head, int heads, int T, int HS) => ((b * T + t) * heads + head) * HS;

    /// <summary>Per-worker scratch of at least <paramref name="length"/> floats.</summary>
    void Grow(long length)
    {
        for (var w = 0; w < scratch.Length; w++)
            if (scratch[w] is not { } a || a.Length < length)
                scratch[w] = new PinnedBuffer(checked((int)length));
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
