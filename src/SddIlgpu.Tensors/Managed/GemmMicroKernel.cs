// The register-tiled inner kernel of ManagedGemm: an MR×NR tile of C accumulated over kc steps with SIMD
// FMAs (AVX-512: 8×32 in 16 zmm accumulators; AVX2: 6×16 in 12 ymm), then C = α·acc + β·C (β = 0 never
// reads C); a full tile with α = 1 and β = 1 (C += A·B, the weight gradient) adds C to its sum, and one with
// α = 1 and β = 0 stores its accumulators straight into C. A is read through (k, row) strides, so it can be the
// caller's matrix or a packed panel.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SddIlgpu.Tensors.Managed;

internal abstract unsafe class GemmMicroKernel(int mr, int nr)
{
    /// <summary>Rows of a tile (fields, not virtual properties: the GEMM reads them per tile).</summary>
    public readonly int MR = mr;

    /// <summary>Columns of a tile.</summary>
    public readonly int NR = nr;

    /// <summary>The widest kernel the hardware accelerates (AVX-512, else 256-bit vectors).</summary>
    public static GemmMicroKernel Best() => Vector512.IsHardwareAccelerated ? new Kernel8x32() : new Kernel6x16();

    /// <summary>The 256-bit 6×16 kernel whatever the hardware (tests run it on AVX-512 machines too).</summary>
    internal static GemmMicroKernel Vector256Kernel() => new Kernel6x16();

    /// <summary>
    /// C[r, j] (r &lt; rows, j &lt; cols) = α·Σ_k A(r, k)·B[k·bK + j] + β·C[r, j], with A(r, k) at a[k·aK + r·aR]
    /// for every r &lt; MR (rows past <paramref name="rows"/> must still be readable) and B's NR columns
    /// contiguous per k (a packed [kc][NR] panel, bK = NR, or the caller's row-major B, bK = ldb).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Run(float* a, nint aK, nint aR, float* b, nint bK, int kc, float* c, int ldc, int rows, int cols, float alpha, float beta)
    {
        if (rows == MR && cols == NR && alpha == 1f && beta == 1f)
        {
            AccumulateInto(a, aK, aR, b, bK, kc, c, ldc); // C += A·B (the weight gradient): C rides in the accumulators
            return;
        }
        if (rows == MR && cols == NR && alpha == 1f && beta == 0f)
        {
            Accumulate(a, aK, aR, b, bK, kc, c, ldc); // C = A·B: the accumulators go straight to C (1·acc is acc, bit for bit)
            return;
        }
        var acc = stackalloc float[MaxTile];
        if (cols <= NR / 2) // an edge panel (N = 65: 64 + 1): half the FMAs on its padding
            AccumulateHalf(a, aK, aR, b, bK, kc, acc);
        else
            Accumulate(a, aK, aR, b, bK, kc, acc, NR);
        var nr = NR;
        for (var r = 0; r < rows; r++)
            StoreRow(acc + r * nr, c + (long)r * ldc, cols, alpha, beta);
    }

    const int MaxTile = 8 * 32;

    /// <summary>B panels one <see cref="RunRow"/> call covers (8 independent accumulators).</summary>
    public const int RowPanels = 4;

    /// <summary>
    /// One row of C over up to RowPanels·NR columns: c[j] = α·Σ_k a[k·aK]·B_p[k·bK + j % NR] + β·c[j], j &lt; cols,
    /// B_p the panel at b + p·panelStride. The same per-element k order as <see cref="Run"/>, so the same bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void RunRow(float* a, nint aK, float* b, nint bK, nint panelStride, int kc, float* c, int cols, float alpha, float beta)
    {
        var acc = stackalloc float[RowPanels * 32];
        var panels = (cols + NR - 1) / NR;
        // Missing panels alias the first: computed and discarded, so the loop has no branches.
        AccumulateRow(a, aK, bK, b, panels > 1 ? b + panelStride : b, panels > 2 ? b + 2 * panelStride : b,
            panels > 3 ? b + 3 * panelStride : b, kc, acc);
        StoreRow(acc, c, cols, alpha, beta);
    }

    /// <summary>acc[p·NR + j] = Σ_k a[k·aK]·B_p[k·bK + j] for the four panels b0..b3.</summary>
    public abstract void AccumulateRow(float* a, nint aK, nint bK, float* b0, float* b1, float* b2, float* b3, int kc, float* acc);

    /// <summary>acc[r·ldAcc + j] = Σ_k A(r, k)·B[k·bK + j] for the whole MR×NR tile (a stack tile, ldAcc = NR, or C itself).</summary>
    public abstract void Accumulate(float* a, nint aK, nint aR, float* b, nint bK, int kc, float* acc, nint ldAcc);

    /// <summary>
    /// C[r·ldc + j] += Σ_k A(r, k)·B[k·bK + j] over the whole MR×NR tile: the k-sum in registers from zero, then
    /// C + sum stored, so C is read and written once and never staged through memory. C is added last, not used
    /// as the first addend: one process accumulating micro-batches then sums exactly as ranks do before their
    /// allreduce (C + Σ), which DistributedTests checks bit for bit.
    /// </summary>
    public abstract void AccumulateInto(float* a, nint aK, nint aR, float* b, nint bK, int kc, float* c, nint ldc);

    /// <summary>acc[r·NR + j] for j &lt; NR/2 only (B as in Accumulate): the same k order, so the same bits.</summary>
    public abstract void AccumulateHalf(float* a, nint aK, nint aR, float* b, nint bK, int kc, float* acc);

    /// <summary>C row = α·acc + β·C row: the same float ops (α·acc, then + β·C) in the vector and scalar parts.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void StoreRow(float* acc, float* c, int cols, float alpha, float beta)
    {
        var j = 0;
        var va = Vector256.Create(alpha);
        var vb = Vector256.Create(beta);
        for (; j + 8 <= cols; j += 8)
        {
            var r = va * Vector256.Load(acc + j);
            if (beta != 0f)
                r += vb * Vector256.Load(c + j);
            r.Store(c + j);
        }
        for (; j < cols; j++)
            c[j] = beta == 0f ? alpha * acc[j] : alpha * acc[j] + beta * c[j];
    }

    /// <summary>
    /// C[r, j] = α·(A row r · B row j) + β·C[r, j] for r &lt; rows, j &lt; cols, both rows contiguous over K: four
    /// Vector256 partial sums over k blocks of 32, added in a fixed tree, then the k tail in order.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotColumns(float* a, int lda, float* b, int ldb, int K, float* c, int ldc, int rows, int cols, float alpha, float beta)
    {
        for (var r = 0; r < rows; r++)
        {
            var ar = a + (long)r * lda;
            for (var j = 0; j < cols; j++)
            {
                var bj = b + (long)j * ldb;
                Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default;
                var k = 0;
                for (; k + 32 <= K; k += 32)
                {
                    s0 = Vector256.FusedMultiplyAdd(Vector256.Load(ar + k), Vector256.Load(bj + k), s0);
                    s1 = Vector256.FusedMultiplyAdd(Vector256.Load(ar + k + 8), Vector256.Load(bj + k + 8), s1);
                    s2 = Vector256.FusedMultiplyAdd(Vector256.Load(ar + k + 16), Vector256.Load(bj + k + 16), s2);
                    s3 = Vector256.FusedMultiplyAdd(Vector256.Load(ar + k + 24), Vector256.Load(bj + k + 24), s3);
                }
                for (; k + 8 <= K; k += 8)
                    s0 = Vector256.FusedMultiplyAdd(Vector256.Load(ar + k), Vector256.Load(bj + k), s0);
                var sum = Vector256.Sum((s0 + s1) + (s2 + s3));
                for (; k < K; k++)
                    sum = MathF.FusedMultiplyAdd(ar[k], bj[k], sum);
                var at = c + (long)r * ldc + j;
                *at = beta == 0f ? alpha * sum : alpha * sum + beta * *at;
            }
        }
    }

    /// <summary>C = β·C for K = 0 (β = 0 writes zeros without reading C).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ScaleTile(float* c, int ldc, int rows, int cols, float beta)
    {
        for (var r = 0; r < rows; r++)
            for (var j = 0; j < cols; j++)
                c[(long)r * ldc + j] = beta == 0f ? 0f : beta * c[(long)r * ldc + j];
    }


    /// <summary>
    /// Asks for the lines of a rows × width tile of C before the k-loop that ends by reading it: a weight gradient's C
    /// was last touched a step ago and comes from memory, and loading it only after the loop stalled each tile's first
    /// k-block on those misses (issue 14, session 8). Changes no value.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void PrefetchTile(float* c, nint ldc, int rows, int width)
    {
        if (!Sse.IsSupported)
            return;
        for (var r = 0; r < rows; r++)
        {
            var row = c + r * ldc;
            Sse.Prefetch0(row);
            Sse.Prefetch0(row + width / 2);
            Sse.Prefetch0(row + width - 1);
        }
    }

    sealed class Kernel8x32() : GemmMicroKernel(8, 32)
    {
        const int MRows = 8, NCols = 32;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public override void Accumulate(float* a, nint aK, nint aR, float* b, nint bK, int kc, float* acc, nint ldAcc)
        {
            PrefetchTile(acc, ldAcc, MRows, NCols);
            Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
            Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
            nint r1 = aR, r2 = 2 * aR, r3 = 3 * aR;
            var a4 = a + 4 * aR;
            for (var k = 0; k < kc; k++)
            {
                var b0 = Vector512.Load(b);
                var b1 = Vector512.Load(b + 16);
                var x = Vector512.Create(a[0]);
                c00 = Vector512.FusedMultiplyAdd(x, b0, c00);
                c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
                x = Vector512.Create(a[r1]);
                c10 = Vector512.FusedMultiplyAdd(x, b0, c10);
                c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
                x = Vector512.Create(a[r2]);
                c20 = Vector512.FusedMultiplyAdd(x, b0, c20);
                c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
                x = Vector512.Create(a[r3]);
                c30 = Vector512.FusedMultiplyAdd(x, b0, c30);
                c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
                x = Vector512.Create(a4[0]);
                c40 = Vector512.FusedMultiplyAdd(x, b0, c40);
                c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
                x = Vector512.Create(a4[r1]);
                c50 = Vector512.FusedMultiplyAdd(x, b0, c50);
                c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
                x = Vector512.Create(a4[r2]);
                c60 = Vector512.FusedMultiplyAdd(x, b0, c60);
                c61 = Vector512.FusedMultiplyAdd(x, b1, c61);
                x = Vector512.Create(a4[r3]);
                c70 = Vector512.FusedMultiplyAdd(x, b0, c70);
                c71 = Vector512.FusedMultiplyAdd(x, b1, c71);
                a += aK;
                a4 += aK;
                b += bK;
            }
            // Stored before any call: vector registers live across a call would be spilled inside the loop.
            var acc4 = acc + 4 * ldAcc;
            c00.Store(acc); c01.Store(acc + 16); c10.Store(acc + ldAcc); c11.Store(acc + ldAcc + 16);
            c20.Store(acc + 2 * ldAcc); c21.Store(acc + 2 * ldAcc + 16); c30.Store(acc + 3 * ldAcc); c31.Store(acc + 3 * ldAcc + 16);
            c40.Store(acc4); c41.Store(acc4 + 16); c50.Store(acc4 + ldAcc); c51.Store(acc4 + ldAcc + 16);
            c60.Store(acc4 + 2 * ldAcc); c61.Store(acc4 + 2 * ldAcc + 16); c70.Store(acc4 + 3 * ldAcc); c71.Store(acc4 + 3 * ldAcc + 16);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public override void AccumulateInto(float* a, nint aK, nint aR, float* b, nint bK, int kc, float* c, nint ldc)
        {
            PrefetchTile(c, ldc, MRows, NCols);
            var c4 = c + 4 * ldc;
            Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default;
            Vector512<float> c20 = default, c21 = default, c30 = default, c31 = default;
            Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default;
            Vector512<float> c60 = default, c61 = default, c70 = default, c71 = default;
            nint r1 = aR, r2 = 2 * aR, r3 = 3 * aR;
            var a4 = a + 4 * aR;
            for (var k = 0; k < kc; k++)
            {
                var b0 = Vector512.Load(b);
                var b1 = Vector512.Load(b + 16);
                var x = Vector512.Create(a[0]);
                c00 = Vector512.FusedMultiplyAdd(x, b0, c00);
                c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
                x = Vector512.Create(a[r1]);
                c10 = Vector512.FusedMultiplyAdd(x, b0, c10);
                c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
                x = Vector512.Create(a[r2]);
                c20 = Vector512.FusedMultiplyAdd(x, b0, c20);
                c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
                x = Vector512.Create(a[r3]);
                c30 = Vector512.FusedMultiplyAdd(x, b0, c30);
                c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
                x = Vector512.Create(a4[0]);
                c40 = Vector512.FusedMultiplyAdd(x, b0, c40);
                c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
                x = Vector512.Create(a4[r1]);
                c50 = Vector512.FusedMultiplyAdd(x, b0, c50);
                c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
                x = Vector512.Create(a4[r2]);
                c60 = Vector512.FusedMultiplyAdd(x, b0, c60);
                c61 = Vector512.FusedMultiplyAdd(x, b1, c61);
                x = Vector512.Create(a4[r3]);
                c70 = Vector512.FusedMultiplyAdd(x, b0, c70);
                c71 = Vector512.FusedMultiplyAdd(x, b1, c71);
                a += aK;
                a4 += aK;
                b += bK;
            }
            (c00 + Vector512.Load(c)).Store(c); (c01 + Vector512.Load(c + 16)).Store(c + 16); (c10 + Vector512.Load(c + ldc)).Store(c + ldc); (c11 + Vector512.Load(c + ldc + 16)).Store(c + ldc + 16);
            (c20 + Vector512.Load(c + 2 * ldc)).Store(c + 2 * ldc); (c21 + Vector512.Load(c + 2 * ldc + 16)).Store(c + 2 * ldc + 16); (c30 + Vector512.Load(c + 3 * ldc)).Store(c + 3 * ldc); (c31 + Vector512.Load(c + 3 * ldc + 16)).Store(c + 3 * ldc + 16);
            (c40 + Vector512.Load(c4)).Store(c4); (c41 + Vector512.Load(c4 + 16)).Store(c4 + 16); (c50 + Vector512.Load(c4 + ldc)).Store(c4 + ldc); (c51 + Vector512.Load(c4 + ldc + 16)).Store(c4 + ldc + 16);
            (c60 + Vector512.Load(c4 + 2 * ldc)).Store(c4 + 2 * ldc); (c61 + Vector512.Load(c4 + 2 * ldc + 16)).Store(c4 + 2 * ldc + 16); (c70 + Vector512.Load(c4 + 3 * ldc)).Store(c4 + 3 * ldc); (c71 + Vector512.Load(c4 + 3 * ldc + 16)).Store(c4 + 3 * ldc + 16);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public override void AccumulateHalf(float* a, nint aK, nint aR, float* b, nint bK, int kc, float* acc)
        {
            Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
            nint r1 = aR, r2 = 2 * aR, r3 = 3 * aR;
            var a4 = a + 4 * aR;
            for (var k = 0; k < kc; k++)
            {
                var b0 = Vector512.Load(b);
                c0 = Vector512.FusedMultiplyAdd(Vector512.Create(a[0]), b0, c0);
                c1 = Vector512.FusedMultiplyAdd(Vector512.Create(a[r1]), b0, c1);
                c2 = Vector512.FusedMultiplyAdd(Vector512.Create(a[r2]), b0, c2);
                c3 = Vector512.FusedMultiplyAdd(Vector512.Create(a[r3]), b0, c3);
                c4 = Vector512.FusedMultiplyAdd(Vector512.Create(a4[0]), b0, c4);
                c5 = Vector512.FusedMultiplyAdd(Vector512.Create(a4[r1]), b0, c5);
                c6 = Vector512.FusedMultiplyAdd(Vector512.Create(a4[r2]), b0, c6);
                c7 = Vector512.FusedMultiplyAdd(Vector512.Create(a4[r3]), b0, c7);
                a += aK;
                a4 += aK;
                b += bK;
            }
            c0.Store(acc); c1.Store(acc + 32); c2.Store(acc + 64); c3.Store(acc + 96);
            c4.Store(acc + 128); c5.Store(acc + 160); c6.Store(acc + 192); c7.Store(acc + 224);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public override void AccumulateRow(float* a, nint aK, nint bK, float* b0, float* b1, float* b2, float* b3, int kc, float* acc)
        {
            Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
            for (nint k = 0; k < kc * bK; k += bK)
            {
                var x = Vector512.Create(*a);
                c0 = Vector512.FusedMultiplyAdd(x, Vector512.Load(b0 + k), c0);
                c1 = Vector512.FusedMultiplyAdd(x, Vector512.Load(b0 + k + 16), c1);
                c2 = Vector512.FusedMultiplyAdd(x, Vector512.Load(b1 + k), c2);
                c3 = Vector512.FusedMultiplyAdd(x, Vector512.Load(b1 + k + 16), c3);
                c4 = Vector512.FusedMultiplyAdd(x, Vector512.Load(b2 + k), c4);
                c5 = Vector512.FusedMultiplyAdd(x, Vector512.Load(b2 + k + 16), c5);
                c6 = Vector512.FusedMultiplyAdd(x, Vector512.Load(b3 + k), c6);
                c7 = Vector512.FusedMultiplyAdd(x, Vector512.Load(b3 + k + 16), c7);
                a += aK;
            }
            c0.Store(acc); c1.Store(acc + 16); c2.Store(acc + 32); c3.Store(acc + 48);
            c4.Store(acc + 64); c5.Store(acc + 80); c6.Store(acc + 96); c7.Store(acc + 112);
        }
    }


    sealed class Kernel6x16() : GemmMicroKernel(6, 16)
    {
        const int MRows = 6, NCols = 16;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public override void Accumulate(float* a, nint aK, nint aR, float* b, nint bK, int kc, float* acc, nint ldAcc)
        {
            PrefetchTile(acc, ldAcc, MRows, NCols);
            Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
            Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
            nint r1 = aR, r2 = 2 * aR;
            var a3 = a + 3 * aR;
            for (var k = 0; k < kc; k++)
            {
                var b0 = Vector256.Load(b);
                var b1 = Vector256.Load(b + 8);
                var x = Vector256.Create(a[0]);
                c00 = Vector256.FusedMultiplyAdd(x, b0, c00);
                c01 = Vector256.FusedMultiplyAdd(x, b1, c01);
                x = Vector256.Create(a[r1]);
                c10 = Vector256.FusedMultiplyAdd(x, b0, c10);
                c11 = Vector256.FusedMultiplyAdd(x, b1, c11);
                x = Vector256.Create(a[r2]);
                c20 = Vector256.FusedMultiplyAdd(x, b0, c20);
                c21 = Vector256.FusedMultiplyAdd(x, b1, c21);
                x = Vector256.Create(a3[0]);
                c30 = Vector256.FusedMultiplyAdd(x, b0, c30);
                c31 = Vector256.FusedMultiplyAdd(x, b1, c31);
                x = Vector256.Create(a3[r1]);
                c40 = Vector256.FusedMultiplyAdd(x, b0, c40);
                c41 = Vector256.FusedMultiplyAdd(x, b1, c41);
                x = Vector256.Create(a3[r2]);
                c50 = Vector256.FusedMultiplyAdd(x, b0, c50);
                c51 = Vector256.FusedMultiplyAdd(x, b1, c51);
                a += aK;
                a3 += aK;
                b += bK;
            }
            var acc3 = acc + 3 * ldAcc;
            c00.Store(acc); c01.Store(acc + 8); c10.Store(acc + ldAcc); c11.Store(acc + ldAcc + 8);
            c20.Store(acc + 2 * ldAcc); c21.Store(acc + 2 * ldAcc + 8); c30.Store(acc3); c31.Store(acc3 + 8);
            c40.Store(acc3 + ldAcc); c41.Store(acc3 + ldAcc + 8); c50.Store(acc3 + 2 * ldAcc); c51.Store(acc3 + 2 * ldAcc + 8);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public override void AccumulateInto(float* a, nint aK, nint aR, float* b, nint bK, int kc, float* c, nint ldc)
        {
            PrefetchTile(c, ldc, MRows, NCols);
            var c3 = c + 3 * ldc;
            Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default;
            Vector256<float> c20 = default, c21 = default, c30 = default, c31 = default;
            Vector256<float> c40 = default, c41 = default, c50 = default, c51 = default;
            nint r1 = aR, r2 = 2 * aR;
            var a3 = a + 3 * aR;
            for (var k = 0; k < kc; k++)
            {
                var b0 = Vector256.Load(b);
                var b1 = Vector256.Load(b + 8);
                var x = Vector256.Create(a[0]);
                c00 = Vector256.FusedMultiplyAdd(x, b0, c00);
                c01 = Vector256.FusedMultiplyAdd(x, b1, c01);
                x = Vector256.Create(a[r1]);
                c10 = Vector256.FusedMultiplyAdd(x, b0, c10);
                c11 = Vector256.FusedMultiplyAdd(x, b1, c11);
                x = Vector256.Create(a[r2]);
                c20 = Vector256.FusedMultiplyAdd(x, b0, c20);
                c21 = Vector256.FusedMultiplyAdd(x, b1, c21);
                x = Vector256.Create(a3[0]);
                c30 = Vector256.FusedMultiplyAdd(x, b0, c30);
                c31 = Vector256.FusedMultiplyAdd(x, b1, c31);
                x = Vector256.Create(a3[r1]);
                c40 = Vector256.FusedMultiplyAdd(x, b0, c40);
                c41 = Vector256.FusedMultiplyAdd(x, b1, c41);
                x = Vector256.Create(a3[r2]);
                c50 = Vector256.FusedMultiplyAdd(x, b0, c50);
                c51 = Vector256.FusedMultiplyAdd(x, b1, c51);
                a += aK;
                a3 += aK;
                b += bK;
            }
            (c00 + Vector256.Load(c)).Store(c); (c01 + Vector256.Load(c + 8)).Store(c + 8); (c10 + Vector256.Load(c + ldc)).Store(c + ldc); (c11 + Vector256.Load(c + ldc + 8)).Store(c + ldc + 8);
            (c20 + Vector256.Load(c + 2 * ldc)).Store(c + 2 * ldc); (c21 + Vector256.Load(c + 2 * ldc + 8)).Store(c + 2 * ldc + 8); (c30 + Vector256.Load(c3)).Store(c3); (c31 + Vector256.Load(c3 + 8)).Store(c3 + 8);
            (c40 + Vector256.Load(c3 + ldc)).Store(c3 + ldc); (c41 + Vector256.Load(c3 + ldc + 8)).Store(c3 + ldc + 8); (c50 + Vector256.Load(c3 + 2 * ldc)).Store(c3 + 2 * ldc); (c51 + Vector256.Load(c3 + 2 * ldc + 8)).Store(c3 + 2 * ldc + 8);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public override void AccumulateHalf(float* a, nint aK, nint aR, float* b, nint bK, int kc, float* acc)
        {
            Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
            nint r1 = aR, r2 = 2 * aR;
            var a3 = a + 3 * aR;
            for (var k = 0; k < kc; k++)
            {
                var b0 = Vector256.Load(b);
                c0 = Vector256.FusedMultiplyAdd(Vector256.Create(a[0]), b0, c0);
                c1 = Vector256.FusedMultiplyAdd(Vector256.Create(a[r1]), b0, c1);
                c2 = Vector256.FusedMultiplyAdd(Vector256.Create(a[r2]), b0, c2);
                c3 = Vector256.FusedMultiplyAdd(Vector256.Create(a3[0]), b0, c3);
                c4 = Vector256.FusedMultiplyAdd(Vector256.Create(a3[r1]), b0, c4);
                c5 = Vector256.FusedMultiplyAdd(Vector256.Create(a3[r2]), b0, c5);
                a += aK;
                a3 += aK;
                b += bK;
            }
            c0.Store(acc); c1.Store(acc + 16); c2.Store(acc + 32); c3.Store(acc + 48); c4.Store(acc + 64); c5.Store(acc + 80);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public override void AccumulateRow(float* a, nint aK, nint bK, float* b0, float* b1, float* b2, float* b3, int kc, float* acc)
        {
            Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
            for (nint k = 0; k < kc * bK; k += bK)
            {
                var x = Vector256.Create(*a);
                c0 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b0 + k), c0);
                c1 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b0 + k + 8), c1);
                c2 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b1 + k), c2);
                c3 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b1 + k + 8), c3);
                c4 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b2 + k), c4);
                c5 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b2 + k + 8), c5);
                c6 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b3 + k), c6);
                c7 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b3 + k + 8), c7);
                a += aK;
            }
            c0.Store(acc); c1.Store(acc + 8); c2.Store(acc + 16); c3.Store(acc + 24);
            c4.Store(acc + 32); c5.Store(acc + 40); c6.Store(acc + 48); c7.Store(acc + 56);
        }
    }
}
