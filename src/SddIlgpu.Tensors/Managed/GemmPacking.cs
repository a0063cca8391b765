// Packing for ManagedGemm: copies a block of a strided operand into the [k][width] panel order the
// micro-kernel streams, zero-padding the lanes past the matrix edge (they are computed and discarded).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SddIlgpu.Tensors.Managed;

internal static unsafe class GemmPacking
{
    /// <summary>
    /// dst[k·width + x] = E(x0 + x, k0 + k) for x &lt; count, 0 for count ≤ x &lt; width, k &lt; kc, where
    /// E(x, k) = src[k·ld + x] when <paramref name="kMajor"/>, else src[x·ld + k].
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Pack(float* src, int ld, bool kMajor, int x0, int count, int k0, int kc, int width, float* dst)
    {
        if (kMajor)
            PackKMajor(src + (long)k0 * ld + x0, ld, count, kc, width, dst);
        else
            PackXMajor(src + (long)x0 * ld + k0, ld, count, kc, width, dst);
    }

    /// <summary>
    /// A block whose source rows are k (stored Aᵀ, or row-major B) to width-wide panels side by side:
    /// dst[p·kc·width + k·width + x] = src[k·ld + p·width + x] for p·width + x &lt; rows, 0 past rows up to the last
    /// panel's width, k &lt; kc. Each source row is read once front to back (a stream the prefetcher follows), where
    /// panel by panel it would be re-walked once per panel.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackTransposedBlock(float* src, int ld, int rows, int kc, int width, float* dst)
    {
        int full = rows / width, rest = rows - full * width;
        var panel = (nint)kc * width;
        for (var k = 0; k < kc; k++)
        {
            var s = src + (long)k * ld;
            if (Sse.IsSupported) // the row PrefetchAhead rows on: in a training step the source comes from memory
                for (var x = 0; x < rows; x += 16)
                    Sse.Prefetch0(s + PrefetchAhead * (long)ld + x);
            var d = dst + (long)k * width;
            var p = 0;
            if (width % 8 == 0)
            {
                for (; p < full; p++)
                    for (var x = 0; x < width; x += 8)
                        Vector256.Store(Vector256.Load(s + p * width + x), d + p * panel + x);
            }
            for (; p < full; p++)
                for (var x = 0; x < width; x++)
                    d[p * panel + x] = s[p * width + x];
            if (rest > 0)
            {
                float* dp = d + full * panel, sp = s + full * width;
                for (var x = 0; x < rest; x++)
                    dp[x] = sp[x];
                for (var x = rest; x < width; x++)
                    dp[x] = 0f;
            }
        }
    }

    /// <summary>
    /// Source rows <see cref="PackTransposedBlock"/> asks for ahead of the one it copies. Each row is one or a few
    /// hundred bytes a long stride from the next (a layer input for dYᵀ·X, a weight for dY·W, up/gate's dY for its
    /// weight gradient), usually not in cache during a step, and the copy waited on each row's misses in turn.
    /// Prefetches never fault, so rows past the block are harmless. Changes no value.
    /// </summary>
    const int PrefetchAhead = 4;

    /// <summary>Rows of the source are k: each panel row is a contiguous copy.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void PackKMajor(float* src, int ld, int count, int kc, int width, float* dst)
    {
        for (var k = 0; k < kc; k++)
        {
            var s = src + (long)k * ld;
            var d = dst + (long)k * width;
            var x = 0;
            if (count == width)
            {
                for (; x + 8 <= width; x += 8)
                    Vector256.Store(Vector256.Load(s + x), d + x);
            }
            for (; x < count; x++)
                d[x] = s[x];
            for (; x < width; x++)
                d[x] = 0f;
        }
    }

    /// <summary>Rows of the source are x: a transpose, in 8×8 AVX blocks where they fit, the rest element by element.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void PackXMajor(float* src, int ld, int count, int kc, int width, float* dst)
    {
        int xBlocks = Avx.IsSupported ? count / 8 * 8 : 0, kBlocks = kc / 8 * 8;
        for (var x = 0; x < xBlocks; x += 8)
            for (var k = 0; k < kBlocks; k += 8)
                Transpose8x8(src + (long)x * ld + k, ld, dst + (long)k * width + x, width);
        for (var x = 0; x < count; x++)
        {
            var s = src + (long)x * ld;
            var d = dst + x;
            for (var k = x < xBlocks ? kBlocks : 0; k < kc; k++)
                d[(long)k * width] = s[k];
        }
        for (var x = count; x < width; x++)
            for (var k = 0; k < kc; k++)
                dst[(long)k * width + x] = 0f;
    }

    /// <summary>Whether <see cref="Stream"/> can write n floats at dst: AVX, dst 32-byte aligned, n a multiple of 8.</summary>
    public static bool CanStream(float* dst, int n) => Avx.IsSupported && ((nint)dst & 31) == 0 && n % 8 == 0;

    /// <summary>
    /// dst[i] = src[i] for i &lt; n with non-temporal stores (<see cref="CanStream"/> must hold): for copies read back
    /// only much later (AdamW's packed weights, used by the next step), which then neither read their lines for
    /// ownership first nor evict what the caller is working on. The caller fences before others read dst.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Stream(float* src, float* dst, int n)
    {
        for (var i = 0; i < n; i += 8)
            Avx.StoreAlignedNonTemporal(dst + i, Avx.LoadVector256(src + i));
    }

    /// <summary>dst[j·ldd + i] = src[i·lds + j] for i, j &lt; 8 (unpack, shuffle, 128-bit permute).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Transpose8x8(float* src, int lds, float* dst, int ldd)
    {
        Vector256<float> r0 = Avx.LoadVector256(src), r1 = Avx.LoadVector256(src + lds);
        Vector256<float> r2 = Avx.LoadVector256(src + 2 * lds), r3 = Avx.LoadVector256(src + 3 * lds);
        Vector256<float> r4 = Avx.LoadVector256(src + 4 * lds), r5 = Avx.LoadVector256(src + 5 * lds);
        Vector256<float> r6 = Avx.LoadVector256(src + 6 * lds), r7 = Avx.LoadVector256(src + 7 * lds);
        Vector256<float> t0 = Avx.UnpackLow(r0, r1), t1 = Avx.UnpackHigh(r0, r1), t2 = Avx.UnpackLow(r2, r3), t3 = Avx.UnpackHigh(r2, r3);
        Vector256<float> t4 = Avx.UnpackLow(r4, r5), t5 = Avx.UnpackHigh(r4, r5), t6 = Avx.UnpackLow(r6, r7), t7 = Avx.UnpackHigh(r6, r7);
        Vector256<float> u0 = Avx.Shuffle(t0, t2, 0x44), u1 = Avx.Shuffle(t0, t2, 0xEE), u2 = Avx.Shuffle(t1, t3, 0x44), u3 = Avx.Shuffle(t1, t3, 0xEE);
        Vector256<float> u4 = Avx.Shuffle(t4, t6, 0x44), u5 = Avx.Shuffle(t4, t6, 0xEE), u6 = Avx.Shuffle(t5, t7, 0x44), u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(dst, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(dst + ldd, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(dst + 2 * ldd, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(dst + 3 * ldd, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(dst + 4 * ldd, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(dst + 5 * ldd, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(dst + 6 * ldd, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(dst + 7 * ldd, Avx.Permute2x128(u3, u7, 0x31));
    }
}
