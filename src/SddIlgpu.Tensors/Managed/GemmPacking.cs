// Packing for ManagedGemm: copies a block of a strided operand into the [k][width] panel order the
// micro-kernel streams, zero-padding the lanes past the matrix edge (they are computed and discarded).
using System.Runtime.Intrinsics;

namespace SddIlgpu.Tensors.Managed;

internal static unsafe class GemmPacking
{
    /// <summary>
    /// dst[k·width + x] = E(x0 + x, k0 + k) for x &lt; count, 0 for count ≤ x &lt; width, k &lt; kc, where
    /// E(x, k) = src[k·ld + x] when <paramref name="kMajor"/>, else src[x·ld + k].
    /// </summary>
    public static void Pack(float* src, int ld, bool kMajor, int x0, int count, int k0, int kc, int width, float* dst)
    {
        if (kMajor)
            PackKMajor(src + (long)k0 * ld + x0, ld, count, kc, width, dst);
        else
            PackXMajor(src + (long)x0 * ld + k0, ld, count, kc, width, dst);
    }

    /// <summary>Rows of the source are k: each panel row is a contiguous copy.</summary>
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

    /// <summary>Rows of the source are x: a transpose, done 8 k at a time per source row.</summary>
    static void PackXMajor(float* src, int ld, int count, int kc, int width, float* dst)
    {
        for (var x = 0; x < count; x++)
        {
            var s = src + (long)x * ld;
            var d = dst + x;
            var k = 0;
            for (; k + 4 <= kc; k += 4)
            {
                float v0 = s[k], v1 = s[k + 1], v2 = s[k + 2], v3 = s[k + 3];
                d[(long)k * width] = v0;
                d[(long)(k + 1) * width] = v1;
                d[(long)(k + 2) * width] = v2;
                d[(long)(k + 3) * width] = v3;
            }
            for (; k < kc; k++)
                d[(long)k * width] = s[k];
        }
        for (var x = count; x < width; x++)
            for (var k = 0; k < kc; k++)
                dst[(long)k * width + x] = 0f;
    }
}
