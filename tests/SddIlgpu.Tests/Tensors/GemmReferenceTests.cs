// The float64 GEMM oracle (MatrixChecks.GemmReference, which the GEMM tests and `sdd doctor` trust) checked
// against MathNet.Numerics' dense matrix product: every transpose, α and β, a leading dimension wider than the
// matrix, so the oracle's MatrixLayout indexing is not the only thing standing between a kernel and its test.
using MathNet.Numerics.LinearAlgebra;
using NUnit.Framework;
using SddIlgpu.Tensors.Ops;
using SddIlgpu.Tests.Support;
using SddIlgpu.Training.Conformance;

namespace SddIlgpu.Tests.Tensors;

public sealed class GemmReferenceTests
{
    [TestCase(5, 7, 3, false, false, 1f, 0f)]
    [TestCase(5, 7, 3, true, false, 0.75f, 0f)]
    [TestCase(5, 7, 3, false, true, 1f, 0.5f)]
    [TestCase(9, 4, 11, true, true, -1.5f, 2f)]
    public void OracleEqualsMathNetProduct(int m, int n, int k, bool transA, bool transB, float alpha, float beta)
    {
        const int pad = 2; // each stored row has `pad` unused columns: Ld > the matrix width
        var (rowsA, colsA) = transA ? (k, m) : (m, k);
        var (rowsB, colsB) = transB ? (n, k) : (k, n);
        var a = Check.Random(rowsA * (colsA + pad), 1);
        var b = Check.Random(rowsB * (colsB + pad), 2);
        var c = Check.Random(m * (n + pad), 3);
        var spec = new GemmSpec(m, n, k, transA, transB, alpha, beta);
        var got = MatrixChecks.GemmReference(spec, a, new MatrixLayout(colsA + pad), b, new MatrixLayout(colsB + pad), c, new MatrixLayout(n + pad));

        static Matrix<double> Stored(float[] x, int rows, int cols) =>
            Matrix<double>.Build.Dense(rows, cols, (i, j) => x[i * (cols + pad) + j]);
        var opA = transA ? Stored(a, rowsA, colsA).Transpose() : Stored(a, rowsA, colsA);
        var opB = transB ? Stored(b, rowsB, colsB).Transpose() : Stored(b, rowsB, colsB);
        var expected = alpha * (opA * opB) + beta * Stored(c, m, n);

        for (var i = 0; i < m; i++)
        {
            for (var j = 0; j < n; j++)
                Assert.That(got[i * (n + pad) + j], Is.EqualTo(expected[i, j]).Within(1e-12), $"C[{i},{j}]");
            for (var j = n; j < n + pad; j++)
                Assert.That(got[i * (n + pad) + j], Is.EqualTo((double)c[i * (n + pad) + j]), $"padding C[{i},{j}] must be untouched");
        }
    }
}
