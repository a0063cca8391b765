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
    [TestCase(768, 344, 128, false, true)] // shakespeare-cpu's up/gate: N a partial 128-tile, which the blocked kernel got wrong on PoCL (GemmKernels.BlockedFits)
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

    enum Kind { Simple, Tiled, Blocked }

    (float[] Actual, double[] Expected) Run(in GemmSpec s, int lenA, in MatrixLayout la, int lenB, in MatrixLayout lb,
        int lenC, in MatrixLayout lc, bool simple, int seed, float cFill = float.NaN) =>
        Run(s, lenA, la, lenB, lb, lenC, lc, simple ? Kind.Simple : Kind.Tiled, seed, cFill);

    (float[] Actual, double[] Expected) Run(in GemmSpec s, int lenA, in MatrixLayout la, int lenB, in MatrixLayout lb,
        int lenC, in MatrixLayout lc, Kind kind, int seed, float cFill = float.NaN)
    {
        using var arena = device.Allocate(lenA + lenB + lenC, "gemm");
        var a = arena.Take(lenA, "a");
        var b = arena.Take(lenB, "b");
        var c = arena.Take(lenC, "c");
        var ha = Check.Random(lenA, seed);
        var hb = Check.Random(lenB, seed + 1);
        // C elements outside every matrix must stay untouched; when β = 0 even the inside ones must not be read.
        var hc = s.Beta == 0 ? Enumerable.Repeat(cFill, lenC).ToArray() : Check.Random(lenC, seed + 2);
        a.Upload(ha);
        b.Upload(hb);
        c.Upload(hc);
        if (kind == Kind.Simple)
            Gemm.GemmSimple(s, a, la, b, lb, c, lc);
        else if (kind == Kind.Tiled)
            Gemm.GemmTiledOp(s, a, la, b, lb, c, lc);
        else
            Gemm.GemmBlockedOp(s, a, la, b, lb, c, lc);
        var expected = Reference(s, ha, la, hb, lb, hc, lc);
        return (c.ToArray(), expected);
    }
}
