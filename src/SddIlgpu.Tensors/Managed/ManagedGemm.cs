// C = α·op(A)·op(B) + β·C for batched strided matrices (Ops/IOps.cs GemmSpec, MatrixLayout), the BLIS
// scheme: pack a KC-deep block of op(A) into MR-row panels and of op(B) into NR-column panels, then a
// register-tiled SIMD micro-kernel per MR×NR tile. Each element's k-sum runs in one fixed order. The blocking
// methods, the micro-kernels and the packing are [AggressiveOptimization]: compiled optimised on their first
// call, never tiered. Under tiered compilation a path a new shape takes first ran unoptimised for ~150 ms, and some
// processes settled with Tile and APanelOuter still in tier-0 code, 1.4–2.1× slower (docs/perf.md, session 7).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Managed;

internal sealed unsafe class ManagedGemm : IGemmOps
{
    /// <summary>Depth of a k block: an NR-column panel of packed B (KC·NR floats) stays in L1.</summary>
    internal const int KC = 256;

    /// <summary>
    /// K up to this is one k block (baby-gpt's K = 384: one pass over C instead of a 256 block and a half-size
    /// 128 one, which stored C and read it back). An A panel of MR × 384 floats (12 KiB) still stays in L1.
    /// </summary>
    internal const int MaxSingleKc = KC + KC / 2;

    /// <summary>Rows of C one block covers while a B panel is hot.</summary>
    internal const int MC = 96;

    /// <summary>
    /// Columns of C one pass over an A block covers: the KC×NC block of B (512 KiB) stays in L2 while each A panel
    /// walks it (baby-gpt's 384×1024 dW would otherwise stream a 1 MiB B block from L3 once per panel).
    /// </summary>
    internal const int NC = 512;

    /// <summary>At most this many columns past the last full NR panel of x·Wᵀ are computed as dot products.</summary>
    internal const int DotTailColumns = 4;

    readonly Device device;
    readonly GemmMicroKernel micro;
    readonly int parts;
    readonly PinnedBuffer[] packedA;
    readonly PanelRanges ranges;
    PinnedBuffer packedB = new(1 << 16);

    public ManagedGemm(Device device) : this(device, ManagedSimd.Workers)
    {
    }

    /// <summary>
    /// A GEMM that splits each call into <paramref name="parts"/> row ranges (one per worker by default), each run
    /// from its start in MC blocks while idle workers take a third of a block at a time from its end. Every element of C
    /// has the same k order whatever the split or the thread, so neither changes a bit (tests pin that).
    /// </summary>
    internal ManagedGemm(Device device, int parts)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(parts, 1);
        this.device = device;
        this.parts = parts;
        micro = GemmMicroKernel.Best();
        packedA = new PinnedBuffer[ManagedSimd.Workers];
        for (var w = 0; w < packedA.Length; w++)
            packedA[w] = new PinnedBuffer(MC * MaxSingleKc); // one MC×kc block of A per worker, [panel][k][MR]
        ranges = new PanelRanges(parts);
    }

    public void Gemm(in GemmSpec spec, Tensor a, in MatrixLayout la, Tensor b, in MatrixLayout lb, Tensor c, in MatrixLayout lc)
    {
        device.ThrowIfDisposed();
        Validate(spec, a, la, b, lb, c, lc);
        device.Counters.CountLaunch();
        if (spec.M == 0 || spec.N == 0)
            return;
        var job = Job(spec, a, la, b, lb, c, lc, BInPlace(spec, lb));
        PackB(job);
        Run(job);
        // The job holds raw pointers only: keep the arenas (whose finalizers free that memory) alive until it is done.
        GC.KeepAlive(a);
        GC.KeepAlive(b);
        GC.KeepAlive(c);
    }

    /// <summary>
    /// B packed once for the whole group (when any member would pack it alone), then each member's panels as
    /// <see cref="Gemm"/> runs them: a member's C gets the same bits either way, since a panel's values and k order do
    /// not depend on where B is read from. One launch per member, as the per-member calls count.
    /// </summary>
    public void GemmSharedB(in GemmSpec spec, IReadOnlyList<GemmMember> members, Tensor b, in MatrixLayout lb)
    {
        ArgumentNullException.ThrowIfNull(members);
        device.ThrowIfDisposed();
        var inPlace = true;
        foreach (var m in members)
        {
            Validate(spec with { M = m.M }, m.A, m.La, b, lb, m.C, m.Lc);
            if (m.M > 0 && !BInPlace(spec with { M = m.M }, lb))
                inPlace = false;
        }
        var packed = false;
        foreach (var m in members)
        {
            device.Counters.CountLaunch();
            if (m.M == 0 || spec.N == 0)
                continue;
            var job = Job(spec with { M = m.M }, m.A, m.La, b, lb, m.C, m.Lc, inPlace);
            if (!packed)
                PackB(job);
            packed = true;
            Run(job);
            GC.KeepAlive(m.A);
            GC.KeepAlive(m.C);
        }
        GC.KeepAlive(b);
    }

    /// <summary>Columns of a packed B panel: the micro-kernel's NR.</summary>
    internal int PanelWidth => micro.NR;

    /// <summary>
    /// <see cref="Gemm"/> with op(B) already packed at <paramref name="packed"/> as <see cref="PackB(in GemmJob, int, int)"/>
    /// would pack it ([panel][K][NR], one matrix): the same bits, without the packing pass. b is still read where N
    /// has a few columns past the last full panel of x·Wᵀ (they are dot products over b's rows).
    /// </summary>
    internal void GemmPackedB(in GemmSpec spec, Tensor a, in MatrixLayout la, Tensor b, in MatrixLayout lb, float* packed, Tensor c, in MatrixLayout lc)
    {
        device.ThrowIfDisposed();
        Validate(spec, a, la, b, lb, c, lc);
        if (spec.BatchCount != 1)
            throw new ArgumentException($"Gemm with packed B: one matrix only; got {spec}.");
        device.Counters.CountLaunch();
        if (spec.M == 0 || spec.N == 0)
            return;
        Run(new GemmJob(spec, Base(a), la, Base(b), lb, Base(c), lc, packed, (spec.N + micro.NR - 1) / micro.NR, bInPlace: false));
        GC.KeepAlive(a);
        GC.KeepAlive(b);
        GC.KeepAlive(c);
    }

    /// <summary>
    /// Panels [p0, p1) of W (Out, In) packed as op(B) = Wᵀ of y = x·Wᵀ: dst[p·In·NR + i·NR + x] = W[p·NR + x, i],
    /// zero past Out; what <see cref="PackB(in GemmJob, int, int)"/> writes for that B. With <paramref name="stage"/>
    /// (In·NR floats, 64-byte aligned) each panel is packed there and then streamed out (<see cref="GemmPacking.Stream"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal void PackWeightForward(float* w, int outFeatures, int inFeatures, int p0, int p1, float* dst, float* stage = null)
    {
        var nr = micro.NR;
        for (var p = p0; p < p1; p++)
        {
            var d = dst + (long)p * inFeatures * nr;
            var streamed = stage != null && GemmPacking.CanStream(d, inFeatures * nr);
            GemmPacking.Pack(w, inFeatures, false, p * nr, Math.Min(nr, outFeatures - p * nr), 0, inFeatures, nr, streamed ? stage : d);
            if (streamed)
                GemmPacking.Stream(stage, d, inFeatures * nr);
        }
    }

    /// <summary>
    /// Rows [o0, o1) of W (Out, In) into W packed as op(B) = W of dX = dY·W: dst[j·Out·NR + o·NR + x] = W[o, j·NR + x],
    /// zero past In; what <see cref="PackB(in GemmJob, int, int)"/> writes for that B. Panel by panel, so each panel's
    /// rows are one contiguous run, streamed past the caches when <paramref name="streamed"/> (full, aligned panels).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal void PackWeightBackward(float* w, int outFeatures, int inFeatures, int o0, int o1, float* dst, bool streamed = false)
    {
        var nr = micro.NR;
        var panels = (inFeatures + nr - 1) / nr;
        for (var j = 0; j < panels; j++)
        {
            var cols = Math.Min(nr, inFeatures - j * nr);
            var run = dst + ((long)j * outFeatures + o0) * nr;
            if (streamed && cols == nr && GemmPacking.CanStream(run, (o1 - o0) * nr))
            {
                for (var o = o0; o < o1; o++)
                    GemmPacking.Stream(w + (long)o * inFeatures + j * nr, run + (long)(o - o0) * nr, nr);
                continue;
            }
            for (var o = o0; o < o1; o++)
            {
                float* row = w + (long)o * inFeatures + j * nr, d = run + (long)(o - o0) * nr;
                var x = 0;
                if (cols == nr && nr % 8 == 0)
                    for (; x < nr; x += 8)
                        Vector256.Store(Vector256.Load(row + x), d + x);
                for (; x < cols; x++)
                    d[x] = row[x];
                for (; x < nr; x++)
                    d[x] = 0f;
            }
        }
    }

    /// <summary>The call's pointers and sizes, with packed B grown to fit it; B read in place or packed as <paramref name="bInPlace"/> says.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    GemmJob Job(in GemmSpec spec, Tensor a, in MatrixLayout la, Tensor b, in MatrixLayout lb, Tensor c, in MatrixLayout lc, bool bInPlace)
    {
        var panelsB = (spec.N + micro.NR - 1) / micro.NR;
        var packedLength = (long)spec.BatchCount * panelsB * micro.NR * spec.K;
        if (packedLength > packedB.Length)
            packedB = new PinnedBuffer(checked((int)Math.Max(packedLength, 2L * packedB.Length))); // grows once to the largest call
        return new GemmJob(spec, Base(a), la, Base(b), lb, Base(c), lc, packedB.Pointer, panelsB, bInPlace);
    }

    /// <summary>
    /// Packs B: every panel, or (read in place) only the partial last panel. Packing is weighted as 8 flops a float:
    /// even a small B (176×64) is packed by both workers, which keeps the helper hot for the compute that follows
    /// instead of idling (and sleeping) through a serial pack. B read in place has only its partial last panel (N =
    /// 344 = 10·32 + 24) packed, to [z][K][NR] at the same offsets.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    void PackB(GemmJob job)
    {
        ref readonly var spec = ref job.Spec;
        if (spec.K > 0 && !job.BInPlace)
            ManagedSimd.For(spec.BatchCount * job.PanelsB, parts, 8L * spec.K * micro.NR, (start, end) => PackB(job, start, end));
        else if (spec.K > 0 && spec.N % micro.NR != 0)
            ManagedSimd.For(spec.BatchCount, parts, 8L * spec.K * micro.NR, (start, end) => PackTails(job, start, end));
    }

    /// <summary>Every MR-row panel of C, split into row ranges that idle workers steal from (<see cref="RunPart"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    void Run(GemmJob job)
    {
        ref readonly var spec = ref job.Spec;
        var panelsPerMatrix = (spec.M + micro.MR - 1) / micro.MR;
        var panels = panelsPerMatrix * spec.BatchCount;
        var flopsPerPanel = 2L * micro.MR * spec.N * Math.Max(1, spec.K);
        var split = Math.Clamp(parts, 1, panels);
        ranges.Reset(panels, split);
        ManagedSimd.ForChunks(panels, split, flopsPerPanel / 32, (worker, _, _) => RunPart(job, worker, panelsPerMatrix));
    }

    /// <summary>
    /// Row-major B is read in place (NR contiguous floats per k) when packing would not repay its full pass
    /// over B: few rows reuse it (M = 65 for dYᵀ·X), or B is small enough (≤ 256 KiB) to stay in L2 whatever
    /// its stride. A big B with a long stride (512²) is packed. Only a partial last panel is packed in place
    /// of reading past the row (<see cref="PackTails"/>).
    /// </summary>
    static bool BInPlace(in GemmSpec s, in MatrixLayout lb) =>
        !s.TransB && (s.M < 2 * MC || (long)s.K * lb.Ld <= 1 << 16);

    static float* Base(Tensor t)
    {
        fixed (float* p = t.HostSpan())
            return p; // arena memory is ILGPU's unmanaged CPU buffer: the pointer stays valid
    }

    /// <summary>Packs B panels [start, end) of the flattened (matrix, NR-column panel) space, each [K][NR], zero-padded.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    void PackB(in GemmJob job, int start, int end)
    {
        ref readonly var s = ref job.Spec;
        int nr = micro.NR, K = s.K;
        for (var u = start; u < end;)
        {
            int z = u / job.PanelsB, p0 = u % job.PanelsB, j0 = p0 * nr;
            var b = job.B + Offset(job.Lb, z, s.BatchInner);
            var dst = job.PackedB + (long)u * K * nr;
            if (!s.TransB)
            {
                // Row-major B: this matrix's full panels in the range row by row, one contiguous read per k.
                var full = Math.Min(end - u, Math.Min(job.PanelsB - p0, (s.N - j0) / nr));
                if (full > 1)
                {
                    GemmPacking.PackTransposedBlock(b + j0, job.Lb.Ld, full * nr, K, nr, dst);
                    u += full;
                    continue;
                }
            }
            var cols = Math.Min(nr, s.N - j0);
            GemmPacking.Pack(b, job.Lb.Ld, !s.TransB, j0, cols, 0, K, nr, dst);
            u++;
        }
    }

    /// <summary>Packs the partial last B panel of matrices [start, end) (B read in place) to PackedB + z·K·NR, zero-padded.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    void PackTails(in GemmJob job, int start, int end)
    {
        ref readonly var s = ref job.Spec;
        int nr = micro.NR, j0 = s.N - s.N % nr;
        for (var z = start; z < end; z++)
            GemmPacking.Pack(job.B + Offset(job.Lb, z, s.BatchInner), job.Lb.Ld, true, j0, s.N - j0, 0, s.K, nr, job.PackedB + (long)z * s.K * nr);
    }

    /// <summary>
    /// One worker's share: the next unstarted range from its start in MC blocks (smaller ones near its end), then a
    /// third of a block at a time from the end of any range still running. A worker that starts late (its vCPU descheduled by the host for a
    /// millisecond or more, measured in baby-gpt's steps) so holds up the join by that much work, not its whole
    /// range. Which thread computes a panel changes none of its bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    void RunPart(in GemmJob job, int worker, int panelsPerMatrix)
    {
        var maxPanels = MC / micro.MR;
        var steal = Math.Max(1, maxPanels / 3);
        if (ranges.StartNext() is var own and >= 0)
            while (ranges.TakeFront(own, maxPanels, steal, out var start, out var end))
                RunPanels(job, worker, start, end, panelsPerMatrix);
        for (var r = 0; r < ranges.Count; r++)
            while (ranges.TakeBack(r, steal, out var start, out var end))
                RunPanels(job, worker, start, end, panelsPerMatrix);
    }

    /// <summary>Computes the MR-row panels [start, end) of the flattened (matrix, row panel) space.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    void RunPanels(in GemmJob job, int worker, int start, int end, int panelsPerMatrix)
    {
        var packedA = this.packedA[worker].Pointer;
        var maxPanels = MC / micro.MR;
        for (var s = start; s < end;)
        {
            var z = s / panelsPerMatrix;
            var first = s % panelsPerMatrix;
            var count = Math.Min(Math.Min(end - s, panelsPerMatrix - first), maxPanels);
            Block(job, z, first * micro.MR, Math.Min(count * micro.MR, job.Spec.M - first * micro.MR), packedA);
            s += count;
        }
    }

    /// <summary>Rows [i0, i0 + rows) of matrix z over all of N; K in KC blocks (the first applies β, later ones add).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    void Block(in GemmJob job, int z, int i0, int rows, float* packedA)
    {
        ref readonly var s = ref job.Spec;
        var c = job.C + Offset(job.Lc, z, s.BatchInner) + (long)i0 * job.Lc.Ld;
        if (s.K == 0)
        {
            GemmMicroKernel.ScaleTile(c, job.Lc.Ld, rows, s.N, s.Beta);
            return;
        }
        var a = job.A + Offset(job.La, z, s.BatchInner);
        int mr = micro.MR, nr = micro.NR, lda = job.La.Ld, ldc = job.Lc.Ld;
        var packed = job.PackedB + (long)z * job.PanelsB * nr * s.K;
        var b = job.B + Offset(job.Lb, z, s.BatchInner);
        // x·Wᵀ with a few columns past the last full panel (N = 65 = 64 + 1): those columns are row·row dot
        // products over contiguous k, far cheaper than a mostly-padding register tile.
        var nTiles = s.N;
        if (!s.TransA && s.TransB && s.N % nr is > 0 and <= DotTailColumns && s.N > nr)
        {
            nTiles = s.N - s.N % nr;
            GemmMicroKernel.DotColumns(a + (long)i0 * lda, lda, b + (long)nTiles * job.Lb.Ld, job.Lb.Ld, s.K, c + nTiles, ldc, rows, s.N - nTiles, s.Alpha, s.Beta);
        }
        var inPlaceB = job.BInPlace;
        nint bK = inPlaceB ? job.Lb.Ld : nr, panelStride = inPlaceB ? nr : (nint)s.K * nr;
        // In place, the partial last panel comes from its packed copy ([K][NR] at matrix z's slot).
        var tailJ = inPlaceB && s.N % nr != 0 ? s.N - s.N % nr : int.MaxValue;
        var tail = job.PackedB + (long)z * s.K * nr;
        var kBlock = s.K <= MaxSingleKc ? s.K : KC;
        for (var k0 = 0; k0 < s.K; k0 += kBlock)
        {
            var bBlock = inPlaceB ? b + (long)k0 * job.Lb.Ld : packed + (long)k0 * nr;
            var kc = Math.Min(kBlock, s.K - k0);
            var view = new BlockView(a, lda, s.TransA, i0, rows, k0, kc, bBlock, bK, panelStride, tailJ, tail + (long)k0 * nr,
                c, ldc, nTiles, s.Alpha, k0 == 0 ? s.Beta : 1f);
            if ((rows + nr) * kc <= L1Floats)
                BPanelOuter(view, packedA);
            else
                APanelOuter(view, packedA);
        }
    }

    /// <summary>Floats of A block plus one B panel that fit L1 beside C (short K: 96 rows × 64).</summary>
    const int L1Floats = 8192;

    /// <summary>
    /// Each A panel stays in L1 across the B panels of an NC-column block, which stream from L2. Packed Aᵀ is
    /// packed whole up front (<see cref="GemmPacking.PackTransposedBlock"/>); another panel that needs packing is
    /// packed once: to one reused (L1-hot) slot when N is one block, else on the first column block to its own
    /// slot of the MC×KC buffer.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    void APanelOuter(in BlockView v, float* packedA)
    {
        int mr = micro.MR, nr = micro.NR;
        var whole = PackTransposedBlock(v, packedA);
        var slots = whole || v.NTiles > NC;
        for (var jc = 0; jc < v.NTiles; jc += NC)
        {
            var jEnd = Math.Min(v.NTiles, jc + NC);
            for (var ir = 0; ir < v.Rows; ir += mr)
            {
                var panel = PanelA(v, ir, slots ? packedA + (long)ir * v.Kc : packedA, out var aK, out var aR, pack: !whole && jc == 0);
                if (v.Rows - ir <= mr / 2)
                    EdgeRows(v, ir, panel, jc, jEnd);
                else
                    for (var jr = jc; jr < jEnd; jr += nr)
                        Tile(v, ir, jr, panel, aK, aR);
            }
        }
    }

    /// <summary>Short K: the whole packed A block and one B panel stay in L1, so each B panel is read once.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    void BPanelOuter(in BlockView v, float* packedA)
    {
        int mr = micro.MR, edge = v.Rows % mr != 0 && v.Rows % mr <= mr / 2 ? v.Rows - v.Rows % mr : v.Rows;
        if (!PackTransposedBlock(v, packedA))
            for (var ir = 0; ir < v.Rows; ir += mr)
                PanelA(v, ir, packedA + (long)ir * v.Kc, out _, out _);
        for (var jr = 0; jr < v.NTiles; jr += micro.NR)
            for (var ir = 0; ir < edge; ir += mr)
            {
                var panel = PanelA(v, ir, packedA + (long)ir * v.Kc, out var aK, out var aR, pack: false);
                Tile(v, ir, jr, panel, aK, aR);
            }
        if (edge < v.Rows)
            EdgeRows(v, edge, packedA + (long)edge * v.Kc, 0, v.NTiles);
    }

    /// <summary>
    /// Stored Aᵀ with at least this many columns is read in place; narrower ones are packed. Measured 2026-11-26
    /// (quiet 2-core Xeon, `SddIlgpu.Perf.dll gemm`): dYᵀ·X 344×128×768 runs at 226 GFLOP/s in place vs 149 packed,
    /// 65×128×768 at 120–133 in place vs 146–181 packed; 2026-11-30 (Zen 4, best single calls on one thread) in
    /// place 107–111 GFLOP/s vs packed 89–101 at 176×64×512, 128×128×768 and 344×128×768: the packing pass is
    /// bound by its cache misses, which the in-place kernel hides behind its FMAs.
    /// </summary>
    const int InPlaceTransposedLd = 128;

    /// <summary>
    /// ... unless the stride is a multiple of this many floats (2 KiB): a panel read in place touches one line
    /// per k, and those 256 lines then fall in a few L1 and L2 sets (baby-gpt's up/gate dY, 2048 floats: 16 L2
    /// sets for 256 lines), evicting each other on every tile. Such panels are packed.
    /// </summary>
    const int AliasingLd = 512;

    /// <summary>
    /// A panel at row ir with its (k, row) strides: a full panel of stored A is read in place (a row per panel
    /// row), as is one of stored Aᵀ with a wide stride that does not alias (the panel's rows contiguous at each k);
    /// any other is packed to <paramref name="dst"/> (or, with <paramref name="pack"/> false, was packed there before).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    float* PanelA(in BlockView v, int ir, float* dst, out nint aK, out nint aR, bool pack = true)
    {
        int mr = micro.MR, count = Math.Min(mr, v.Rows - ir);
        if (count == mr && (!v.TransA || TransposedInPlace(v.Lda)))
        {
            if (v.TransA)
            {
                (aK, aR) = (v.Lda, 1);
                return v.A + (long)v.K0 * v.Lda + v.I0 + ir;
            }
            (aK, aR) = (1, v.Lda);
            return v.A + (long)(v.I0 + ir) * v.Lda + v.K0;
        }
        if (pack)
            GemmPacking.Pack(v.A, v.Lda, v.TransA, v.I0 + ir, count, v.K0, v.Kc, mr, dst);
        (aK, aR) = (mr, 1);
        return dst;
    }

    static bool TransposedInPlace(int lda) => lda >= InPlaceTransposedLd && lda % AliasingLd != 0;

    /// <summary>Stored Aᵀ that is not read in place: the whole block packed to its panel slots (panel p at p·MR·kc); false otherwise.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    bool PackTransposedBlock(in BlockView v, float* packedA)
    {
        if (!v.TransA || TransposedInPlace(v.Lda))
            return false;
        GemmPacking.PackTransposedBlock(v.A + (long)v.K0 * v.Lda + v.I0, v.Lda, v.Rows, v.Kc, micro.MR, packedA);
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    void Tile(in BlockView v, int ir, int jr, float* panel, nint aK, nint aR)
    {
        var tail = jr >= v.TailJ;
        var b = tail ? v.Tail : v.B + jr / micro.NR * v.PanelStride;
        var bK = tail ? micro.NR : v.BK;
        micro.Run(panel, aK, aR, b, bK, v.Kc, v.C + (long)ir * v.Ldc + jr, v.Ldc,
            Math.Min(micro.MR, v.Rows - ir), Math.Min(micro.NR, v.NTiles - jr), v.Alpha, v.Beta);
    }

    /// <summary>
    /// A narrow M edge (M = 65 = 64 + 1) over columns [j0, j1) from its packed panel, row by row: no FMAs on
    /// padding rows. Each column's k-sum is the same whatever the grouping, so the NC split changes no bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    void EdgeRows(in BlockView v, int ir, float* panel, int j0, int j1)
    {
        var width = GemmMicroKernel.RowPanels * micro.NR;
        var full = Math.Min(j1, v.TailJ);
        for (var r = ir; r < v.Rows; r++)
        {
            for (var jr = j0; jr < full; jr += width)
                micro.RunRow(panel + (r - ir), micro.MR, v.B + jr / micro.NR * v.PanelStride, v.BK, v.PanelStride, v.Kc,
                    v.C + (long)r * v.Ldc + jr, Math.Min(width, full - jr), v.Alpha, v.Beta);
            if (full < j1)
                micro.RunRow(panel + (r - ir), micro.MR, v.Tail, micro.NR, 0, v.Kc, v.C + (long)r * v.Ldc + full, j1 - full, v.Alpha, v.Beta);
        }
    }

    static long Offset(in MatrixLayout l, int z, int batchInner) =>
        l.Offset + (long)(z / batchInner) * l.OuterStride + (long)(z % batchInner / l.InnerDiv) * l.InnerStride;

    static int RoundUp(int n, int m) => (n + m - 1) / m * m;

    static void Validate(in GemmSpec s, Tensor a, in MatrixLayout la, Tensor b, in MatrixLayout lb, Tensor c, in MatrixLayout lc)
    {
        if (s.M < 0 || s.N < 0 || s.K < 0 || s.BatchOuter < 1 || s.BatchInner < 1)
            throw new ArgumentException($"Gemm: invalid sizes {s}.");
        if (la.InnerDiv < 1 || lb.InnerDiv < 1 || lc.InnerDiv < 1)
            throw new ArgumentException("Gemm: InnerDiv must be at least 1.");
        CheckOperand("A", a, la, s.TransA ? s.K : s.M, s.TransA ? s.M : s.K, s);
        CheckOperand("B", b, lb, s.TransB ? s.N : s.K, s.TransB ? s.K : s.N, s);
        CheckOperand("C", c, lc, s.M, s.N, s);
    }

    /// <summary>Every matrix of the batch must lie inside its tensor (the kernels index raw memory).</summary>
    static void CheckOperand(string role, Tensor t, in MatrixLayout l, int rows, int cols, in GemmSpec s)
    {
        if (rows == 0 || cols == 0)
            return;
        if (l.Ld < cols)
            throw new ArgumentException($"Gemm: {role} ({t.Name}) has leading dimension {l.Ld} < {cols} columns.");
        var last = l.Offset + (long)(s.BatchOuter - 1) * l.OuterStride + (long)((s.BatchInner - 1) / l.InnerDiv) * l.InnerStride
                   + (long)(rows - 1) * l.Ld + cols;
        if (l.Offset < 0 || l.OuterStride < 0 || l.InnerStride < 0 || last > t.Length)
            throw new ArgumentException($"Gemm: {role} needs {last} elements with layout {l}; {t.Name} {t.Shape} has {t.Length}.");
    }
}

/// <summary>Raw pointers and sizes of one Gemm call (a struct so the parallel body allocates nothing for it).</summary>
internal readonly unsafe struct GemmJob(GemmSpec spec, float* a, MatrixLayout la, float* b, MatrixLayout lb, float* c, MatrixLayout lc,
    float* packedB, int panelsB, bool bInPlace)
{
    public readonly GemmSpec Spec = spec;
    public readonly float* A = a, B = b, C = c, PackedB = packedB;
    public readonly MatrixLayout La = la, Lb = lb, Lc = lc;
    public readonly int PanelsB = panelsB;

    /// <summary>Row-major B read where it lies (only a partial last panel packed), else every panel packed.</summary>
    public readonly bool BInPlace = bInPlace;
}

/// <summary>
/// One KC block of rows [I0, I0 + Rows) over columns [0, NTiles): A, its B block (B + p·PanelStride per panel, BK
/// per k; the panel from column TailJ on, if any, at Tail as [kc][NR]) and C.
/// </summary>
internal readonly unsafe struct BlockView(float* a, int lda, bool transA, int i0, int rows, int k0, int kc, float* b, nint bK, nint panelStride,
    int tailJ, float* tail, float* c, int ldc, int nTiles, float alpha, float beta)
{
    public readonly float* A = a, B = b, C = c, Tail = tail;
    public readonly int Lda = lda, I0 = i0, Rows = rows, K0 = k0, Kc = kc, Ldc = ldc, NTiles = nTiles, TailJ = tailJ;
    public readonly bool TransA = transA;
    public readonly nint BK = bK, PanelStride = panelStride;
    public readonly float Alpha = alpha, Beta = beta;
}

/// <summary>
/// The row ranges of one Gemm call as double-ended queues of panels: the range's owner takes MC blocks from its
/// front, idle workers take panels from its back. Each range's (front, back) pair is one 64-bit word on its own
/// cache line, updated by compare-and-swap.
/// </summary>
internal sealed class PanelRanges(int capacity)
{
    const int Stride = 8; // longs per range: one 64-byte line each

    readonly long[] words = new long[(capacity + 1) * Stride];
    int count, next;

    public int Count => count;

    /// <summary>Splits [0, panels) into <paramref name="ranges"/> equal ranges, none started.</summary>
    public void Reset(int panels, int ranges)
    {
        count = ranges;
        next = 0;
        for (var r = 0; r < ranges; r++)
            words[(r + 1) * Stride] = Pack(ManagedSimd.PartStart(panels, ranges, r), ManagedSimd.PartStart(panels, ranges, r + 1));
    }

    /// <summary>The index of a range no worker has started (its owner is the caller), or −1.</summary>
    public int StartNext()
    {
        var r = Interlocked.Increment(ref next) - 1;
        return r < count ? r : -1;
    }

    /// <summary>
    /// Takes up to <paramref name="panels"/> panels from the front of range r, or, once fewer than twice that are
    /// left, half of what is left but at least <paramref name="tail"/>: the owner's last claims shrink, so a worker
    /// that has run out finds panels to take from the back instead of waiting for a whole block. False once empty.
    /// </summary>
    public bool TakeFront(int r, int panels, int tail, out int start, out int end)
    {
        ref var word = ref words[(r + 1) * Stride];
        while (true)
        {
            var seen = Volatile.Read(ref word);
            var (front, back) = Unpack(seen);
            var left = back - front;
            var take = left < 2 * panels ? Math.Max(tail, (left + 1) / 2) : panels;
            (start, end) = (front, Math.Min(back, front + take));
            if (start >= end)
                return false;
            if (Interlocked.CompareExchange(ref word, Pack(end, back), seen) == seen)
                return true;
        }
    }

    /// <summary>Takes up to <paramref name="panels"/> panels from the back of range r; false once it is empty.</summary>
    public bool TakeBack(int r, int panels, out int start, out int end)
    {
        ref var word = ref words[(r + 1) * Stride];
        while (true)
        {
            var seen = Volatile.Read(ref word);
            var (front, back) = Unpack(seen);
            (start, end) = (Math.Max(front, back - panels), back);
            if (start >= end)
                return false;
            if (Interlocked.CompareExchange(ref word, Pack(front, start), seen) == seen)
                return true;
        }
    }

    static long Pack(int front, int back) => (long)(uint)front | (long)back << 32;

    static (int Front, int Back) Unpack(long word) => ((int)(uint)word, (int)(word >> 32));
}

/// <summary>A pinned, 64-byte-aligned float buffer allocated once and reused by every call.</summary>
internal sealed unsafe class PinnedBuffer
{
    readonly float[] array;

    public PinnedBuffer(int length)
    {
        array = GC.AllocateUninitializedArray<float>(length + 16, pinned: true);
        fixed (float* p = array)
            Pointer = (float*)(((nint)p + 63) & ~(nint)63);
    }

    public float* Pointer { get; }

    public int Length => array.Length - 16;
}
