// Batched GEMM against a naive float64 reference of the IGemmOps contract (MatrixLayout offsets with
// InnerDiv, transposes, α, β), the tiled kernel against the simple one, determinism and shape errors.
using NUnit.Framework;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Kernels;
using SddIlgpu.Tensors.Ops;
using SddIlgpu.Tests.Support;

namespace SddIlgpu.Tests.Tensors;

[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Kernel))]
public sealed class GemmTests(string deviceName)
{
    Device device = null!;

    GemmKernels Gemm => device.Kernels.Gemm;

    [OneTimeSetUp]
    public void Open() => device = TestDevices.Wide(deviceName); // launches 256-thread groups

    /// <summary>C = α·op(A)·op(B) + β·C in float64, straight from the MatrixLayout formula (the doctor's reference).</summary>
    internal static double[] Reference(in GemmSpec s, float[] a, in MatrixLayout la, float[] b, in MatrixLayout lb, float[] c, in MatrixLayout lc) =>
        SddIlgpu.Training.Conformance.MatrixChecks.GemmReference(s, a, la, b, lb, c, lc);

    static IEnumerable<TestCaseData> Plain()
    {
        foreach (var (m, n, k) in new[] { (1, 1, 1), (7, 33, 65), (65, 7, 33), (64, 64, 16) })
            foreach (var ta in new[] { false, true })
                foreach (var tb in new[] { false, true })
                    yield return new TestCaseData(m, n, k, ta, tb);
    }

    [TestCaseSource(nameof(Plain))]
    public void EveryTransposeMatchesFloat64AndTheSimpleKernel(int m, int n, int k, bool transA, bool transB)
    {
        var s = new GemmSpec(m, n, k, transA, transB, Alpha: 0.75f, Beta: 0f);
        var la = new MatrixLayout(transA ? m : k);
        var lb = new MatrixLayout(transB ? k : n);
        var lc = new MatrixLayout(n);
        var (tiled, expected) = Run(s, m * k, la, k * n, lb, m * n, lc, simple: false, seed: m + n + k);
        Check.Close(tiled, expected, 1e-5, 1e-5, $"tiled {m}x{n}x{k} tA={transA} tB={transB}");
        var (simple, _) = Run(s, m * k, la, k * n, lb, m * n, lc, simple: true, seed: m + n + k);
        Check.Close(simple, expected, 1e-5, 1e-5, "simple");
        Check.Close(tiled, simple, 1e-6, 1e-6, "tiled vs simple");
    }

    [TestCase(false)]
    [TestCase(true)]
    public void BetaAccumulatesAndBetaZeroIgnoresNaNInC(bool simple)
    {
        var s = new GemmSpec(7, 33, 65, Alpha: -1.5f, Beta: 0.5f);
        var (acc, expected) = Run(s, 7 * 65, new(65), 65 * 33, new(33), 7 * 33, new(33), simple, seed: 3);
        Check.Close(acc, expected, 1e-5, 1e-5, "beta 0.5");

        s = s with { Beta = 0f };
        var (ignored, expected0) = Run(s, 7 * 65, new(65), 65 * 33, new(33), 7 * 33, new(33), simple, seed: 3, cFill: float.NaN);
        Check.Close(ignored, expected0, 1e-5, 1e-5, "beta 0 over NaN");
    }

    /// <summary>
    /// Two outer × four inner matrices with gaps between rows and matrices, an offset, and InnerDiv = 2 on B (four
    /// inner matrices of A share two of B, as grouped-query heads share kv heads); C lives inside a larger tensor.
    /// </summary>
    [TestCase(false, false, false)]
    [TestCase(true, true, false)]
    [TestCase(false, true, true)]
    [TestCase(true, false, true)]
    public void BatchedStridedLayoutsWithInnerDivMatchFloat64(bool transA, bool transB, bool simple)
    {
        const int m = 7, n = 33, k = 9, outer = 2, inner = 4;
        int rowsA = transA ? k : m, colsA = transA ? m : k, rowsB = transB ? n : k, colsB = transB ? k : n;
        var la = new MatrixLayout(colsA + 3, OuterStride: inner * (rowsA * (colsA + 3) + 5), InnerStride: rowsA * (colsA + 3) + 5, Offset: 2);
        var lb = new MatrixLayout(colsB + 1, OuterStride: 2 * rowsB * (colsB + 1) + 7, InnerStride: rowsB * (colsB + 1), InnerDiv: 2, Offset: 1);
        var lc = new MatrixLayout(inner * n, OuterStride: m * inner * n, InnerStride: n, Offset: 4);
        var s = new GemmSpec(m, n, k, transA, transB, Alpha: 1.25f, Beta: -0.5f, BatchOuter: outer, BatchInner: inner);
        var (actual, expected) = Run(s, (int)(2 + outer * la.OuterStride), la, (int)(1 + outer * lb.OuterStride), lb,
            (int)(4 + outer * lc.OuterStride + 3), lc, simple, seed: 11);
        Check.Close(actual, expected, 1e-5, 1e-5, $"batched tA={transA} tB={transB} simple={simple}");
    }

    [Test]
    public void TiledKernelRepeatsBitForBit()
    {
        var s = new GemmSpec(65, 70, 33, TransB: true, BatchOuter: 2);
        var (first, _) = Run(s, 2 * 65 * 33, new(33, 65 * 33), 2 * 70 * 33, new(33, 70 * 33), 2 * 65 * 70, new(70, 65 * 70), false, 5);
        var (second, _) = Run(s, 2 * 65 * 33, new(33, 65 * 33), 2 * 70 * 33, new(33, 70 * 33), 2 * 65 * 70, new(70, 65 * 70), false, 5);
        Check.BitIdentical(first, second, "two tiled runs");
    }

    [Test]
    public void ShapeErrorsNameTheOperandAndTheSizes()
    {
        using var arena = device.Allocate(200, "gemm.errors");
        var a = arena.Take(7 * 5, "a");
        var b = arena.Take(5 * 3, "b");
        var c = arena.Take(7 * 3 - 1, "c");
        var e = Assert.Throws<ArgumentException>(() => Gemm.Gemm(new GemmSpec(7, 3, 5), a, new(5), b, new(3), c, new(3)))!;
        Assert.That(e.Message, Does.Contain("operand C").And.Contain("needs at least 21 elements").And.Contain("holds 20"));

        e = Assert.Throws<ArgumentException>(() => Gemm.Gemm(new GemmSpec(7, 3, 6), a, new(6), b, new(3), c, new(3)))!;
        Assert.That(e.Message, Does.Contain("operand A").And.Contain("needs at least 42 elements").And.Contain("holds 35"));

        e = Assert.Throws<ArgumentException>(() => Gemm.Gemm(new GemmSpec(7, 3, 5, TransB: true), a, new(5), b, new(2), c, new(3)))!;
        Assert.That(e.Message, Does.Contain("operand B").And.Contain("Ld must be at least the 5 columns"));

        e = Assert.Throws<ArgumentException>(() => Gemm.Gemm(new GemmSpec(7, 3, 5, BatchOuter: 2), a, new(5, 35), b, new(3), c, new(3)))!;
        Assert.That(e.Message, Does.Contain("operand A").And.Contain("needs at least 70 elements"));
    }

    /// <summary>
    /// The register-blocked kernel (the GPU path for products of at least 128×128) forced at small and ragged sizes
    /// on every kernel device: every transpose, K not a multiple of the 8-wide slice, partial 128-tiles, α and β.
    /// </summary>
    [TestCase(1, 1, 1)]
    [TestCase(7, 33, 65)]
    [TestCase(130, 129, 17)]
    [TestCase(128, 128, 8)]
    public void BlockedKernelMatchesFloat64ForEveryTranspose(int m, int n, int k)
    {
        foreach (var transA in new[] { false, true })
            foreach (var transB in new[] { false, true })
            {
                var s = new GemmSpec(m, n, k, transA, transB, Alpha: 0.75f, Beta: 0.5f);
                var (actual, expected) = Run(s, m * k, new MatrixLayout(transA ? m : k), k * n, new MatrixLayout(transB ? k : n),
                    m * n, new MatrixLayout(n), Kind.Blocked, seed: m + n + k);
                Check.Close(actual, expected, 1e-5, 1e-5, $"blocked {m}x{n}x{k} tA={transA} tB={transB}");
            }
    }

    /// <summary>The model's shapes (baby-gpt's C = 384, 4·C = 1536) through Gemm's own kernel choice, on GPUs and OpenCL.</summary>
    [TestCase(512, 384, 384, false, true)]
    [TestCase(384, 1536, 256, true, false)]
    [TestCase(768, 344, 128, false, true)] // shakespeare-cpu's up/gate: N a partial 128-tile, which the blocked kernel once got wrong on PoCL
    public void ModelShapesMatchFloat64OnGpuBackEnds(int m, int n, int k, bool transA, bool transB)
    {
        if (device.IsHostMemory)
            Assert.Ignore("Model shapes run on GPU and OpenCL back ends; the CPU accelerator runs the small cases.");
        var s = new GemmSpec(m, n, k, transA, transB, Alpha: 1f, Beta: 0f);
        using var arena = device.Allocate((long)m * k + (long)k * n + (long)m * n, "gemm.model");
        var a = arena.Take(m * k, "a");
        var b = arena.Take(k * n, "b");
        var c = arena.Take(m * n, "c");
        var ha = Check.Random(m * k, 21);
        var hb = Check.Random(k * n, 22);
        a.Upload(ha);
        b.Upload(hb);
        MatrixLayout la = new(transA ? m : k), lb = new(transB ? k : n), lc = new(n);
        Gemm.Gemm(s, a, la, b, lb, c, lc);
        Check.Close(c.ToArray(), Reference(s, ha, la, hb, lb, new float[m * n], lc), 1e-5, 1e-5, $"{m}x{n}x{k} tA={transA} tB={transB}");
    }

    /// <summary>
    /// Ragged products (M, N not multiples of the tile, K not a multiple of the k-slice) through each tiled kernel,
    /// every transpose, with C inside a buffer that has guard elements before it, after it (a whole tile of rows
    /// and more) and, with Ld = N + 131, between its rows (a write up to a tile past N lands there, not in the next
    /// row where a later tile could overwrite it): the result must match float64 and every guard element must keep its
    /// bits. Small shapes run on every kernel device; the model shapes (768×344×128 is shakespeare-cpu's
    /// up/gate product, where the blocked kernel once wrote past N on PoCL) only where kernels are fast.
    /// </summary>
    [TestCase(65, 200, 37, false)]
    [TestCase(130, 129, 13, false)]
    [TestCase(1, 344, 9, false)]
    [TestCase(768, 344, 128, true)]
    [TestCase(65, 344, 131, true)]
    [TestCase(344, 200, 259, true)]
    [TestCase(200, 200, 8, true)]
    public void RaggedEdgesMatchFloat64AndLeaveTheGuardsUntouched(int m, int n, int k, bool modelShape)
    {
        if (modelShape && device.IsHostMemory)
            Assert.Ignore("Model shapes run on GPU and OpenCL back ends; the CPU accelerator runs the small cases.");
        Assert.Multiple(() =>
        {
            foreach (var kind in new[] { Kind.Blocked, Kind.Tiled })
                foreach (var transA in new[] { false, true })
                    foreach (var transB in new[] { false, true })
                        foreach (var (pad, beta) in new[] { (0, 0f), (GemmBlocked.Tile + 3, 0.5f) })
                            CheckGuarded(new GemmSpec(m, n, k, transA, transB, Alpha: 0.75f, Beta: beta), pad, kind, seed: m + n + k);
        });
    }

    /// <summary>
    /// Runs one product with C at Offset 37, Ld = N + <paramref name="pad"/> and 128 rows plus 131 elements of
    /// guard after it, all guard elements set to a sentinel; checks the matrix against float64 and the guards bit
    /// for bit.
    /// </summary>
    void CheckGuarded(in GemmSpec s, int pad, Kind kind, int seed, int splits = 1)
    {
        const int before = 37;
        const float sentinel = -7777.25f;
        var ld = s.N + pad;
        var lenC = before + s.M * ld + GemmBlocked.Tile * ld + 131;
        var la = new MatrixLayout(s.TransA ? s.M : s.K);
        var lb = new MatrixLayout(s.TransB ? s.K : s.N);
        var lc = new MatrixLayout(ld, Offset: before);
        var hc = Enumerable.Repeat(sentinel, lenC).ToArray();
        var inside = new bool[lenC];
        var values = Check.Random(s.M * s.N, seed + 2);
        for (var i = 0; i < s.M; i++)
            for (var j = 0; j < s.N; j++)
            {
                var at = before + i * ld + j;
                inside[at] = true;
                hc[at] = s.Beta == 0 ? float.NaN : values[i * s.N + j];
            }
        var (actual, expected) = Run(s, s.M * s.K, la, s.K * s.N, lb, hc, lc, kind, seed, splits);
        var label = $"{kind}{(kind == Kind.SplitK ? $" ({splits} ranges)" : "")} {s.M}x{s.N}x{s.K} tA={s.TransA} tB={s.TransB} Ld={ld} beta={s.Beta}";
        var strays = Enumerable.Range(0, lenC).Where(i => !inside[i] && BitConverter.SingleToInt32Bits(actual[i]) != BitConverter.SingleToInt32Bits(sentinel)).ToList();
        Assert.That(strays, Is.Empty, $"{label}: {strays.Count} guard elements written, first at " +
            string.Join(", ", strays.Take(5).Select(i => $"[{i}] (row {(i - before) / ld}, column {(i - before) % ld})")));
        Check.Close(actual, expected, 1e-5, 1e-5, label);
    }

    /// <summary>
    /// Split-K (the weight gradients' path when a product has fewer tiles than the GPU has multiprocessors; through
    /// the blocked kernel, or the tiled one when M or N is under 128) forced with a given number of K ranges, K not a multiple of the range or the k-slice, every transpose, β = 0 and the
    /// accumulating β of dW += Xᵀ·dY: float64 result, untouched guards around C, and the same bits on a repeat.
    /// </summary>
    [TestCase(130, 129, 77, 3, false)]
    [TestCase(7, 33, 19, 2, false)]
    [TestCase(384, 384, 1029, 8, true)]
    [TestCase(200, 344, 1000, 5, true)]
    [TestCase(65, 384, 515, 6, true)]
    public void SplitKMatchesFloat64LeavesTheGuardsAndRepeatsBitForBit(int m, int n, int k, int splits, bool modelShape)
    {
        if (modelShape && device.IsHostMemory)
            Assert.Ignore("Model shapes run on GPU and OpenCL back ends; the CPU accelerator runs the small cases.");
        Assert.Multiple(() =>
        {
            foreach (var transA in new[] { true, false })
                foreach (var transB in new[] { false, true })
                    foreach (var (pad, beta) in new[] { (0, 0f), (GemmBlocked.Tile + 3, 1f) })
                        CheckGuarded(new GemmSpec(m, n, k, transA, transB, Alpha: 0.75f, Beta: beta), pad, Kind.SplitK, seed: m + k, splits);
        });
        var s = new GemmSpec(m, n, k, TransA: true, Beta: 1f);
        var (first, _) = Run(s, m * k, new MatrixLayout(m), k * n, new MatrixLayout(n), m * n, new MatrixLayout(n), Kind.SplitK, 9, splits);
        var (second, _) = Run(s, m * k, new MatrixLayout(m), k * n, new MatrixLayout(n), m * n, new MatrixLayout(n), Kind.SplitK, 9, splits);
        Check.BitIdentical(second, first, "two split-K runs");
    }

    (float[] Actual, double[] Expected) Run(in GemmSpec s, int lenA, in MatrixLayout la, int lenB, in MatrixLayout lb,
        int lenC, in MatrixLayout lc, Kind kind, int seed, int splits) =>
        Run(s, lenA, la, lenB, lb, Check.Random(lenC, seed + 2), lc, kind, seed, splits);

    [TestCase(false, false)]
    [TestCase(true, true)]
    public void BlockedKernelBatchedLayoutsMatchFloat64AndRepeatBitForBit(bool transA, bool transB)
    {
        const int m = 7, n = 33, k = 19, outer = 2, inner = 4;
        int rowsA = transA ? k : m, colsA = transA ? m : k, rowsB = transB ? n : k, colsB = transB ? k : n;
        var la = new MatrixLayout(colsA + 3, OuterStride: inner * (rowsA * (colsA + 3) + 5), InnerStride: rowsA * (colsA + 3) + 5, Offset: 2);
        var lb = new MatrixLayout(colsB + 1, OuterStride: 2 * rowsB * (colsB + 1) + 7, InnerStride: rowsB * (colsB + 1), InnerDiv: 2, Offset: 1);
        var lc = new MatrixLayout(inner * n, OuterStride: m * inner * n, InnerStride: n, Offset: 4);
        var s = new GemmSpec(m, n, k, transA, transB, Alpha: 1.25f, Beta: -0.5f, BatchOuter: outer, BatchInner: inner);
        var (first, expected) = Run(s, (int)(2 + outer * la.OuterStride), la, (int)(1 + outer * lb.OuterStride), lb,
            (int)(4 + outer * lc.OuterStride + 3), lc, Kind.Blocked, seed: 13);
        Check.Close(first, expected, 1e-5, 1e-5, $"blocked batched tA={transA} tB={transB}");
        var (second, _) = Run(s, (int)(2 + outer * la.OuterStride), la, (int)(1 + outer * lb.OuterStride), lb,
            (int)(4 + outer * lc.OuterStride + 3), lc, Kind.Blocked, seed: 13);
        Check.BitIdentical(second, first, "two blocked runs");
    }

    enum Kind { Simple, Tiled, Blocked, SplitK }

    (float[] Actual, double[] Expected) Run(in GemmSpec s, int lenA, in MatrixLayout la, int lenB, in MatrixLayout lb,
        int lenC, in MatrixLayout lc, bool simple, int seed, float cFill = float.NaN) =>
        Run(s, lenA, la, lenB, lb, lenC, lc, simple ? Kind.Simple : Kind.Tiled, seed, cFill);

    (float[] Actual, double[] Expected) Run(in GemmSpec s, int lenA, in MatrixLayout la, int lenB, in MatrixLayout lb,
        int lenC, in MatrixLayout lc, Kind kind, int seed, float cFill = float.NaN)
    {
        // C elements outside every matrix must stay untouched; when β = 0 even the inside ones must not be read.
        var hc = s.Beta == 0 ? Enumerable.Repeat(cFill, lenC).ToArray() : Check.Random(lenC, seed + 2);
        return Run(s, lenA, la, lenB, lb, hc, lc, kind, seed);
    }

    /// <summary>One product with C starting as <paramref name="hc"/>: the device's C and the float64 reference.</summary>
    (float[] Actual, double[] Expected) Run(in GemmSpec s, int lenA, in MatrixLayout la, int lenB, in MatrixLayout lb,
        float[] hc, in MatrixLayout lc, Kind kind, int seed, int splits = 1)
    {
        var lenC = hc.Length;
        using var arena = device.Allocate(lenA + lenB + lenC, "gemm");
        var a = arena.Take(lenA, "a");
        var b = arena.Take(lenB, "b");
        var c = arena.Take(lenC, "c");
        var ha = Check.Random(lenA, seed);
        var hb = Check.Random(lenB, seed + 1);
        a.Upload(ha);
        b.Upload(hb);
        c.Upload(hc);
        if (kind == Kind.Simple)
            Gemm.GemmSimple(s, a, la, b, lb, c, lc);
        else if (kind == Kind.Tiled)
            Gemm.GemmTiledOp(s, a, la, b, lb, c, lc);
        else if (kind == Kind.Blocked)
            Gemm.GemmBlockedOp(s, a, la, b, lb, c, lc);
        else
            Gemm.GemmSplitKOp(s, a, la, b, lb, c, lc, splits);
        var expected = Reference(s, ha, la, hb, lb, hc, lc);
        return (c.ToArray(), expected);
    }
}
