// Batched C = α·op(A)·op(B) + β·C (the contract of IGemmOps in Ops/IOps.cs). Three kernels: the register-blocked
// one (GemmBlocked.cs: 128×128 tiles, 8×8 per thread, double-buffered K-slices) for GPU products of at least
// 128×128, the tiled one (GemmTiled.cs: 64×64 tiles, 4×4 per thread) for smaller ones such as attention's
// (T, HS) heads, and a simple grid-stride one (one output per iteration) that the CPU accelerator runs and tests
// use as the reference. All sum each dot product in k order.
using ILGPU;
using ILGPU.Runtime;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Kernels;

internal sealed class GemmKernels : IGemmOps
{
    /// <summary>ILGPU's (and CUDA's) limit on the grid's Y extent; larger batches loop inside the kernel.</summary>
    const int MaxGridY = ushort.MaxValue;

    readonly Device device;
    readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs> simple;
    readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs> tiled;
    readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs> blocked;
    readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, SplitKSum> splitKSum;
    Arena? splitArena;
    Tensor? splitPartials;

    public GemmKernels(Device device)
    {
        this.device = device;
        simple = device.Load(nameof(SimpleKernel),
            a => a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>(SimpleKernel));
        tiled = device.Load(nameof(GemmTiled.TiledKernel),
            a => a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>(GemmTiled.TiledKernel));
        blocked = device.Load(nameof(GemmBlocked.BlockedKernel),
            a => a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>(GemmBlocked.BlockedKernel));
        splitKSum = device.Load(nameof(SplitKSumKernel),
            a => a.LoadKernel<ArrayView<float>, ArrayView<float>, SplitKSum>(SplitKSumKernel));
        UseSimple = device.Geometry.HostMemory;
    }

    /// <summary>
    /// When true, <see cref="Gemm"/> runs the simple kernel. It starts true on the CPU accelerator, where the
    /// tiled kernel's 256 OS threads and two OS barriers per K-slice make it 20-40× slower (docs/perf.md), and
    /// false on GPUs. Tests and benchmarks call <see cref="GemmSimple"/> and <see cref="GemmTiledOp"/> directly.
    /// </summary>
    internal bool UseSimple { get; set; }

    public void Gemm(in GemmSpec spec, Tensor a, in MatrixLayout la, Tensor b, in MatrixLayout lb, Tensor c, in MatrixLayout lc) =>
        Gemm(spec, a, la, b, lb, c, lc, GemmArgs.CausalNone);

    /// <summary>
    /// <see cref="Gemm(in GemmSpec, Tensor, in MatrixLayout, Tensor, in MatrixLayout, Tensor, in MatrixLayout)"/> for
    /// causal attention: <paramref name="causal"/> (a GemmArgs.Causal* constant) lets the tiled kernels skip tiles
    /// above the diagonal or the zero part of k. The simple kernel computes everything, with the same results.
    /// </summary>
    internal void Gemm(in GemmSpec spec, Tensor a, in MatrixLayout la, Tensor b, in MatrixLayout lb, Tensor c, in MatrixLayout lc, int causal)
    {
        if (UseSimple)
            GemmSimple(spec, a, la, b, lb, c, lc);
        else if (SplitsOf(spec, causal) is > 1 and var splits)
            GemmSplitKOp(spec, a, la, b, lb, c, lc, splits);
        else if (UsesBlocked(spec))
            GemmBlockedOp(spec, a, la, b, lb, c, lc, causal);
        else
            GemmTiledOp(spec, a, la, b, lb, c, lc, causal);
    }

    /// <summary>
    /// Whether <see cref="Gemm"/> gives a product to the blocked kernel: when M and N both reach a 128-tile, ragged
    /// edges included (smaller products would leave most of a 128-tile idle; they take the 64×64 tiled kernel).
    /// </summary>
    internal static bool UsesBlocked(in GemmSpec spec) => spec.M >= GemmBlocked.Tile && spec.N >= GemmBlocked.Tile;

    /// <summary>The shared-memory tiled kernel: a 64×64 tile of C per 256-thread group, batch on the grid's Y.</summary>
    internal void GemmTiledOp(in GemmSpec spec, Tensor a, in MatrixLayout la, Tensor b, in MatrixLayout lb, Tensor c, in MatrixLayout lc,
        int causal = GemmArgs.CausalNone)
    {
        var args = Validate(spec, a, la, b, lb, c, lc, causal);
        var tiles = (long)GemmTiled.TilesOf(spec.M) * GemmTiled.TilesOf(spec.N);
        var gridX = (int)Math.Min(tiles, int.MaxValue);
        var gridY = Math.Min(spec.BatchCount, MaxGridY);
        var config = new KernelConfig(new Index2D(gridX, gridY), new Index2D(GemmTiled.Threads, 1));
        tiled(device.Launching(), config, a.View, b.View, c.View, args);
    }

    /// <summary>The register-blocked kernel: a 128×128 tile of C per 256-thread group, batch on the grid's Y.</summary>
    internal void GemmBlockedOp(in GemmSpec spec, Tensor a, in MatrixLayout la, Tensor b, in MatrixLayout lb, Tensor c, in MatrixLayout lc,
        int causal = GemmArgs.CausalNone)
    {
        var args = Validate(spec, a, la, b, lb, c, lc, causal);
        var tiles = (long)GemmBlocked.TilesOf(spec.M) * GemmBlocked.TilesOf(spec.N);
        var config = new KernelConfig(new Index2D((int)Math.Min(tiles, int.MaxValue), Math.Min(spec.BatchCount, MaxGridY)),
            new Index2D(GemmBlocked.Threads, 1));
        blocked(device.Launching(), config, a.View, b.View, c.View, args);
    }

    /// <summary>Shortest K range a split-K group sums: below it the partials' traffic outweighs the extra groups.</summary>
    internal const int MinSplitK = 256;

    /// <summary>
    /// How many K ranges <see cref="Gemm"/> splits a product into: 1 unless it is a single, non-causal matrix whose
    /// tiles (of the kernel it takes: 128 or 64) are fewer than the device's multiprocessors (the weight gradients
    /// dW = Xᵀ·dY: a few tiles, K = B·T); then enough ranges of at least <see cref="MinSplitK"/> for two groups per
    /// multiprocessor.
    /// </summary>
    internal int SplitsOf(in GemmSpec spec, int causal = GemmArgs.CausalNone)
    {
        if (spec.BatchCount != 1 || causal != GemmArgs.CausalNone)
            return 1;
        var tiles = TilesOf(spec);
        var sms = device.Geometry.Multiprocessors;
        if (tiles >= sms)
            return 1;
        return Math.Max(1, Math.Min((2 * sms + tiles - 1) / tiles, spec.K / MinSplitK));
    }

    /// <summary>
    /// Deterministic split-K with the blocked kernel (the tiled one when M or N is under 128): K is cut into <paramref name="splits"/> ranges of a multiple of
    /// the k-slice (the last one shorter); group (tile, range r) writes op(A)·op(B) over its range to partial r of a
    /// scratch buffer (kept by this object, grown on first use), then one thread per output adds the partials in
    /// range order: C = α·Σ_r partial_r + β·C. Same inputs, same bits; no atomics.
    /// </summary>
    internal void GemmSplitKOp(in GemmSpec spec, Tensor a, in MatrixLayout la, Tensor b, in MatrixLayout lb, Tensor c, in MatrixLayout lc,
        int splits)
    {
        Validate(spec, a, la, b, lb, c, lc);
        if (spec.BatchCount != 1)
            throw new ArgumentException($"Gemm: split-K takes one matrix; got {spec}.");
        var length = ((spec.K + splits - 1) / splits + GemmBlocked.KSlice - 1) / GemmBlocked.KSlice * GemmBlocked.KSlice;
        var ranges = (spec.K + length - 1) / length;
        var kLast = spec.K - (ranges - 1) * length;
        var mn = (long)spec.M * spec.N;
        if (ranges * mn > int.MaxValue)
            throw new ArgumentException($"Gemm: split-K partials of {ranges}·{spec.M}·{spec.N} floats exceed {int.MaxValue}.");
        var partials = SplitPartials(ranges * mn);
        // Range r of op(A) starts r·length columns in, of op(B) r·length rows in: the batch index z is the range.
        var part = spec with { K = length, Alpha = 1f, Beta = 0f, BatchOuter = ranges, BatchInner = 1 };
        var pla = la with { OuterStride = length * (spec.TransA ? (long)la.Ld : 1), InnerStride = 0, InnerDiv = 1 };
        var plb = lb with { OuterStride = length * (spec.TransB ? 1 : (long)lb.Ld), InnerStride = 0, InnerDiv = 1 };
        var plc = new MatrixLayout(spec.N, OuterStride: mn);
        var args = new GemmArgs(part,
            new GemmLayout(pla, spec.TransA ? 1 : la.Ld, spec.TransA ? la.Ld : 1),
            new GemmLayout(plb, spec.TransB ? 1 : lb.Ld, spec.TransB ? lb.Ld : 1),
            new GemmLayout(plc, plc.Ld, 1), GemmArgs.CausalNone, kLast);
        var config = new KernelConfig(new Index2D(TilesOf(spec), ranges),
            new Index2D(UsesBlocked(spec) ? GemmBlocked.Threads : GemmTiled.Threads, 1));
        (UsesBlocked(spec) ? blocked : tiled)(device.Launching(), config, a.View, b.View, partials.View, args);
        splitKSum(device.Launching(), device.GridStride(mn), partials.View, c.View,
            new SplitKSum(spec.M, spec.N, ranges, lc.Offset, lc.Ld, spec.Alpha, spec.Beta));
    }

    /// <summary>Tiles of C in the kernel <see cref="Gemm"/> gives the product to (blocked or tiled).</summary>
    static int TilesOf(in GemmSpec spec) => UsesBlocked(spec)
        ? GemmBlocked.TilesOf(spec.M) * GemmBlocked.TilesOf(spec.N)
        : GemmTiled.TilesOf(spec.M) * GemmTiled.TilesOf(spec.N);

    /// <summary>The split-K scratch, at least <paramref name="floats"/> long (allocated by the first split product that needs more).</summary>
    Tensor SplitPartials(long floats)
    {
        if (splitPartials is null || splitPartials.Length < floats)
        {
            splitArena?.Dispose();
            splitArena = device.Allocate(floats, "gemm.splitK");
            splitPartials = splitArena.Take((int)floats, "gemm.splitK.partials");
        }
        return splitPartials;
    }

    /// <summary>C(m, n) = α·Σ_r partials[r·M·N + m·N + n] + β·C(m, n), r in order; one output per grid-stride step.</summary>
    [Kernel]
    internal static void SplitKSumKernel(ArrayView<float> partials, ArrayView<float> c, SplitKSum s)
    {
        var total = (long)s.M * s.N;
        for (long i = Grid.GlobalIndex.X; i < total; i += KernelInfra.GlobalStride)
        {
            var sum = 0f;
            for (var r = 0; r < s.Ranges; r++)
                sum += partials[r * total + i];
            var m = i / s.N;
            var at = s.Offset + m * s.Ld + (i - m * s.N);
            c[at] = s.Beta == 0f ? s.Alpha * sum : s.Alpha * sum + s.Beta * c[at];
        }
    }

    /// <summary>The simple reference kernel: one output element per grid-stride iteration.</summary>
    internal void GemmSimple(in GemmSpec spec, Tensor a, in MatrixLayout la, Tensor b, in MatrixLayout lb, Tensor c, in MatrixLayout lc)
    {
        var args = Validate(spec, a, la, b, lb, c, lc);
        simple(device.Launching(), device.GridStride((long)spec.BatchCount * spec.M * spec.N), a.View, b.View, c.View, args);
    }

    /// <summary>Checks sizes and that the last element each operand touches lies inside its tensor.</summary>
    static GemmArgs Validate(in GemmSpec s, Tensor a, in MatrixLayout la, Tensor b, in MatrixLayout lb, Tensor c, in MatrixLayout lc,
        int causal = GemmArgs.CausalNone)
    {
        if (causal != GemmArgs.CausalNone && s.M != s.K && causal != GemmArgs.CausalSkipUpper)
            throw new ArgumentException($"Gemm: a causal product over k needs op(A) square (M = K); got {s}.");
        if (s.M < 1 || s.N < 1 || s.K < 1 || s.BatchOuter < 1 || s.BatchInner < 1)
            throw new ArgumentException($"Gemm: M, N, K, BatchOuter and BatchInner must be positive; got {s}.");
        if ((long)s.BatchOuter * s.BatchInner > int.MaxValue)
            throw new ArgumentException($"Gemm: {s.BatchOuter}·{s.BatchInner} matrices exceed {int.MaxValue}.");
        if (a.Device != c.Device || b.Device != c.Device)
            throw new ArgumentException($"Gemm: A ({a.Device.Name}), B ({b.Device.Name}) and C ({c.Device.Name}) must live on the same device.");
        CheckOperand("A", a, la, s.TransA ? s.K : s.M, s.TransA ? s.M : s.K, s);
        CheckOperand("B", b, lb, s.TransB ? s.N : s.K, s.TransB ? s.K : s.N, s);
        CheckOperand("C", c, lc, s.M, s.N, s);
        return new GemmArgs(s,
            new GemmLayout(la, s.TransA ? 1 : la.Ld, s.TransA ? la.Ld : 1),
            new GemmLayout(lb, s.TransB ? 1 : lb.Ld, s.TransB ? lb.Ld : 1),
            new GemmLayout(lc, lc.Ld, 1), causal);
    }

    static void CheckOperand(string role, Tensor t, in MatrixLayout l, int rows, int cols, in GemmSpec s)
    {
        var stored = $"operand {role} ({t.Name} {t.Shape}, stored {rows}×{cols} per matrix, {l})";
        if (l.Ld < cols)
            throw new ArgumentException($"Gemm: {stored}: Ld must be at least the {cols} columns of a stored row; got {l.Ld}.");
        if (l.InnerDiv < 1 || l.Offset < 0 || l.OuterStride < 0 || l.InnerStride < 0)
            throw new ArgumentException($"Gemm: {stored}: InnerDiv must be positive and Offset and strides non-negative.");
        var last = l.Offset + (s.BatchOuter - 1) * l.OuterStride + (s.BatchInner - 1) / l.InnerDiv * l.InnerStride
            + (rows - 1L) * l.Ld + cols - 1;
        if (last >= t.Length)
            throw new ArgumentException(
                $"Gemm: {stored} reaches element {last}, so it needs at least {last + 1} elements; the tensor holds {t.Length}.");
    }

    [Kernel]
    internal static void SimpleKernel(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmArgs g)
    {
        var total = (long)g.BatchCount * g.M * g.N;
        for (long i = Grid.GlobalIndex.X; i < total; i += KernelInfra.GlobalStride)
        {
            var n = (int)(i % g.N);
            var rest = i / g.N;
            var m = (int)(rest % g.M);
            var z = (int)(rest / g.M);
            var rowA = g.A.Base(z, g.BatchInner) + m * g.A.StrideRow;
            var colB = g.B.Base(z, g.BatchInner) + n * g.B.StrideCol;
            var acc = 0f;
            for (var k = 0; k < g.K; k++)
                acc += a[rowA + k * g.A.StrideCol] * b[colB + k * g.B.StrideRow];
            g.Store(c, g.C.Base(z, g.BatchInner), m, n, acc);
        }
    }
}

/// <summary>Arguments of the split-K sum: C (M, N) at Offset with row stride Ld, Ranges partials of M·N floats.</summary>
internal readonly struct SplitKSum(int m, int n, int ranges, long offset, int ld, float alpha, float beta)
{
    public readonly int M = m;
    public readonly int N = n;
    public readonly int Ranges = ranges;
    public readonly long Offset = offset;
    public readonly int Ld = ld;
    public readonly float Alpha = alpha;
    public readonly float Beta = beta;
}

/// <summary>One operand's layout as kernels read it: op(X)(r, c) is at Base(z) + r·StrideRow + c·StrideCol.</summary>
internal readonly struct GemmLayout
{
    public readonly long Offset;
    public readonly long OuterStride;
    public readonly long InnerStride;
    public readonly int InnerDiv;
    public readonly int Ld;
    public readonly long StrideRow;
    public readonly long StrideCol;

    public GemmLayout(in MatrixLayout l, long strideRow, long strideCol)
    {
        Offset = l.Offset;
        OuterStride = l.OuterStride;
        InnerStride = l.InnerStride;
        InnerDiv = l.InnerDiv;
        Ld = l.Ld;
        StrideRow = strideRow;
        StrideCol = strideCol;
    }

    /// <summary>Where matrix z = outer·batchInner + inner starts (the MatrixLayout formula).</summary>
    public long Base(int z, int batchInner) =>
        Offset + z / batchInner * OuterStride + z % batchInner / InnerDiv * InnerStride;
}

/// <summary>Kernel arguments of one GEMM: sizes, scalars and the three operand layouts (as op(X) sees them).</summary>
internal readonly struct GemmArgs
{
    public readonly int M;
    public readonly int N;
    public readonly int K;
    public readonly int BatchInner;
    public readonly int BatchCount;
    public readonly int TransA;
    public readonly int TransB;
    public readonly float Alpha;
    public readonly float Beta;
    public readonly GemmLayout A;
    public readonly GemmLayout B;
    public readonly GemmLayout C;

    /// <summary>What causal attention lets the tiled kernels skip: one of the Causal* constants.</summary>
    public readonly int Causal;

    /// <summary>K of the last matrix of the batch (the last K range of a split-K product); K otherwise.</summary>
    public readonly int KLast;

    /// <summary>A general product.</summary>
    public const int CausalNone = 0;

    /// <summary>Scores (T, T): tiles wholly above the diagonal are not computed (the causal softmax writes them).</summary>
    public const int CausalSkipUpper = 1;

    /// <summary>op(A)(m, k) = 0 for k &gt; m (P·v, dS·k): a tile's k loop ends after its last row.</summary>
    public const int CausalLowerA = 2;

    /// <summary>op(A)(m, k) = 0 for k &lt; m (Pᵀ·dCtx, dSᵀ·q): a tile's k loop starts at its first row.</summary>
    public const int CausalUpperA = 3;

    public GemmArgs(in GemmSpec s, GemmLayout a, GemmLayout b, GemmLayout c, int causal = CausalNone, int kLast = -1)
    {
        Causal = causal;
        KLast = kLast < 0 ? s.K : kLast;
        M = s.M;
        N = s.N;
        K = s.K;
        BatchInner = s.BatchInner;
        BatchCount = s.BatchCount;
        TransA = s.TransA ? 1 : 0;
        TransB = s.TransB ? 1 : 0;
        Alpha = s.Alpha;
        Beta = s.Beta;
        A = a;
        B = b;
        C = c;
    }

    /// <summary>K of batch matrix z: <see cref="KLast"/> for the last one, else K.</summary>
    public int KOf(int z) => z == BatchCount - 1 ? KLast : K;

    /// <summary>First k a tile starting at row m0 needs (a multiple of 8, so slices stay aligned).</summary>
    public int KBegin(int m0) => Causal == CausalUpperA ? m0 / 8 * 8 : 0;

    /// <summary>One past the last k a tile of <paramref name="rows"/> rows from m0 needs.</summary>
    public int KEnd(int m0, int rows) => Causal == CausalLowerA && m0 + rows < K ? m0 + rows : K;

    /// <summary>C(m, n) = α·acc + β·C(m, n), skipping rows and columns past the matrix; β = 0 never reads C.</summary>
    public void Store(ArrayView<float> c, long baseC, int m, int n, float acc)
    {
        if (m >= M || n >= N)
            return;
        Put(c, baseC + (long)m * C.Ld + n, acc);
    }

    /// <summary>c[at] = α·acc + β·c[at], unguarded (the caller knows at is inside C); β = 0 never reads C.</summary>
    public void Put(ArrayView<float> c, long at, float acc) =>
        c[at] = Beta == 0f ? Alpha * acc : Alpha * acc + Beta * c[at];
}
