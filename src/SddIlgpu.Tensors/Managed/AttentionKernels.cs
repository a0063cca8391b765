// Register-blocked inner loops of ManagedAttention (spec §3 attention): a row of scores x·m_j against a
// transposed (HS, ldT) matrix, and weighted sums of rows Σ_j c_j·r_j. Both keep their accumulators in
// vector registers and add the terms in index order with fused multiply-adds (fixed order, same bits).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SddIlgpu.Tensors.Managed;

internal static unsafe class AttentionKernels
{
    /// <summary>
    /// row[j] = Σ_d x[d]·mT[d·ldT + j] for j &lt; count (d ascending). mT's columns up to ldT (a multiple of 8)
    /// must be readable; only row[0, count) is written.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ScoresRow(float* x, int hs, float* mT, int ldT, int count, float* row)
    {
        var j = 0;
        for (; j + 32 <= count; j += 32)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            var m = mT + j;
            for (var d = 0; d < hs; d++, m += ldT)
            {
                var xd = Vector256.Create(x[d]);
                a0 = Vector256.FusedMultiplyAdd(xd, Vector256.Load(m), a0);
                a1 = Vector256.FusedMultiplyAdd(xd, Vector256.Load(m + 8), a1);
                a2 = Vector256.FusedMultiplyAdd(xd, Vector256.Load(m + 16), a2);
                a3 = Vector256.FusedMultiplyAdd(xd, Vector256.Load(m + 24), a3);
            }
            a0.Store(row + j); a1.Store(row + j + 8); a2.Store(row + j + 16); a3.Store(row + j + 24);
        }
        for (; j < count; j += 8)
        {
            var a0 = Vector256<float>.Zero;
            var m = mT + j;
            for (var d = 0; d < hs; d++, m += ldT)
                a0 = Vector256.FusedMultiplyAdd(Vector256.Create(x[d]), Vector256.Load(m), a0);
            if (j + 8 <= count)
                a0.Store(row + j);
            else
                for (var l = 0; j + l < count; l++)
                    row[j + l] = a0.GetElement(l);
        }
    }

    /// <summary>
    /// dst[i] (+)= Σ_j c[j·cStride]·rows[j·ldRows + i] for i &lt; width, j ascending from dst (add) or from 0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void CombineRows(float* c, nint cStride, int count, float* rows, nint ldRows, int width, float* dst, bool add)
    {
        var i = 0;
        for (; i + 32 <= width; i += 32)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            if (add)
            {
                a0 = Vector256.Load(dst + i); a1 = Vector256.Load(dst + i + 8);
                a2 = Vector256.Load(dst + i + 16); a3 = Vector256.Load(dst + i + 24);
            }
            var r = rows + i;
            var cj = c;
            for (var j = 0; j < count; j++, r += ldRows, cj += cStride)
            {
                var w = Vector256.Create(*cj);
                a0 = Vector256.FusedMultiplyAdd(w, Vector256.Load(r), a0);
                a1 = Vector256.FusedMultiplyAdd(w, Vector256.Load(r + 8), a1);
                a2 = Vector256.FusedMultiplyAdd(w, Vector256.Load(r + 16), a2);
                a3 = Vector256.FusedMultiplyAdd(w, Vector256.Load(r + 24), a3);
            }
            a0.Store(dst + i); a1.Store(dst + i + 8); a2.Store(dst + i + 16); a3.Store(dst + i + 24);
        }
        for (; i + 8 <= width; i += 8)
        {
            var a0 = add ? Vector256.Load(dst + i) : default;
            var r = rows + i;
            var cj = c;
            for (var j = 0; j < count; j++, r += ldRows, cj += cStride)
                a0 = Vector256.FusedMultiplyAdd(Vector256.Create(*cj), Vector256.Load(r), a0);
            a0.Store(dst + i);
        }
        for (; i < width; i++)
        {
            var s = add ? dst[i] : 0f;
            for (var j = 0; j < count; j++)
                s = MathF.FusedMultiplyAdd(c[j * cStride], rows[j * ldRows + i], s);
            dst[i] = s;
        }
    }

    /// <summary>In place: row[j] = softmax(scale·row)[j] over j ≤ t, 0 for t &lt; j &lt; T.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SoftmaxRow(Span<float> row, int t, float scale)
    {
        var live = row[..(t + 1)];
        Scale(live, scale);
        var sum = ManagedSimd.ExpShifted(live, ManagedSimd.Max(live), live);
        var vs = Vector256.Create(sum);
        var j = 0;
        fixed (float* p = live)
        {
            for (; j + 8 <= live.Length; j += 8)
                (Vector256.Load(p + j) / vs).Store(p + j);
            for (; j < live.Length; j++)
                p[j] /= sum;
        }
        row[(t + 1)..].Clear();
    }

    /// <summary>
    /// Lanes of an 8-float block at <paramref name="j"/> that lie before <paramref name="count"/> (all-ones), the
    /// rest zero: a score row's causal cut as a vector mask.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Live(int j, int count) =>
        Vector256.LessThan(Vector256.Create(j) + Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7), Vector256.Create(count)).AsSingle();

    /// <summary>max of row[0, count), count ≥ 1, in whole 8-float blocks (lanes past count ignored).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float RowMax(float* row, int count)
    {
        var ninf = Vector256.Create(float.NegativeInfinity);
        var acc = ninf;
        var j = 0;
        for (; j + 8 <= count; j += 8)
            acc = Vector256.Max(acc, Vector256.Load(row + j));
        if (j < count)
            acc = Vector256.Max(acc, Vector256.ConditionalSelect(Live(j, count), Vector256.Load(row + j), ninf));
        var m = acc.GetElement(0);
        for (var l = 1; l < 8; l++)
            m = MathF.Max(m, acc.GetElement(l));
        return m;
    }

    /// <summary>
    /// One online-softmax row (FA-2 Algorithm 1): row[j] = exp(row[j] − shift) for j &lt; count, 0 for count ≤ j &lt;
    /// <paramref name="zeroTo"/> (the row must be readable and writable to zeroTo rounded up to 8); returns Σ_{j &lt; count}
    /// row[j], summed 8 lanes at a time in order. Whole 8-float blocks, the last one masked, so a short causal row pays
    /// no scalar tail; lanes past count never reach the exp (they may hold anything).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float ExpRow(float* row, int count, float shift, int zeroTo)
    {
        var vs = Vector256.Create(shift);
        var acc = Vector256<float>.Zero;
        var j = 0;
        for (; j + 8 <= count; j += 8)
        {
            var e = ManagedSimd.ExpVector(Vector256.Load(row + j) - vs);
            e.Store(row + j);
            acc += e;
        }
        if (j < count)
        {
            var live = Live(j, count);
            var e = live & ManagedSimd.ExpVector((live & Vector256.Load(row + j)) - (live & vs));
            e.Store(row + j);
            acc += e;
            j += 8;
        }
        for (; j < zeroTo; j += 8)
            Vector256<float>.Zero.Store(row + j);
        return Vector256.Sum(acc);
    }

    /// <summary>
    /// One backward row (FA-2 Algorithm 2): p[j] = exp(p[j] − lse) and dS[j] = scale·p[j]·(dS[j] − d) (dS holds dP on
    /// entry) for j &lt; count; both 0 for count ≤ j &lt; <paramref name="zeroTo"/>. Whole 8-float blocks as <see cref="ExpRow"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SoftmaxBackwardRow(float* p, float* dS, int count, float lse, float d, float scale, int zeroTo)
    {
        Vector256<float> vl = Vector256.Create(lse), vd = Vector256.Create(d), vscale = Vector256.Create(scale);
        var j = 0;
        for (; j + 8 <= count; j += 8)
        {
            var e = ManagedSimd.ExpVector(Vector256.Load(p + j) - vl);
            e.Store(p + j);
            (vscale * e * (Vector256.Load(dS + j) - vd)).Store(dS + j);
        }
        if (j < count)
        {
            var live = Live(j, count);
            var e = live & ManagedSimd.ExpVector((live & Vector256.Load(p + j)) - (live & vl));
            e.Store(p + j);
            (live & (vscale * e * (Vector256.Load(dS + j) - vd))).Store(dS + j);
            j += 8;
        }
        for (; j < zeroTo; j += 8)
        {
            Vector256<float>.Zero.Store(p + j);
            Vector256<float>.Zero.Store(dS + j);
        }
    }

    /// <summary>x[i] *= s.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Scale(Span<float> x, float s)
    {
        var vs = Vector256.Create(s);
        var i = 0;
        fixed (float* p = x)
        {
            for (; i + 8 <= x.Length; i += 8)
                (Vector256.Load(p + i) * vs).Store(p + i);
            for (; i < x.Length; i++)
                p[i] *= s;
        }
    }

    /// <summary>
    /// mT[d·ldT + j] = m[j·ld + d] for j &lt; T, and 0 for T ≤ j &lt; ldT (so full vectors can be read): 8×8 AVX block
    /// transposes where they fit (<see cref="GemmPacking.Transpose8x8"/>), the edges element by element.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Transpose(float* m, nint ld, int T, int hs, float* mT, int ldT)
    {
        int jBlocks = Avx.IsSupported ? T / 8 * 8 : 0, dBlocks = hs / 8 * 8;
        for (var j = 0; j < jBlocks; j += 8)
        {
            for (var r = 8; r < 16; r++)
                PrefetchRow(m + (j + r) * ld, hs); // the next block's rows (a head's rows are one stride apart)
            for (var d = 0; d < dBlocks; d += 8)
                GemmPacking.Transpose8x8(m + j * ld + d, (int)ld, mT + d * ldT + j, ldT);
        }
        for (var j = 0; j < T; j++)
        {
            var src = m + j * ld;
            for (var d = j < jBlocks ? dBlocks : 0; d < hs; d++)
                mT[d * ldT + j] = src[d];
        }
        for (var d = 0; d < hs; d++)
            for (var j = T; j < ldT; j++)
                mT[d * ldT + j] = 0f;
    }

    /// <summary>Rows a loop reads or writes this far ahead are asked for now (<see cref="PrefetchRow"/>).</summary>
    public const int PrefetchRows = 4;

    /// <summary>
    /// Asks for the cache lines of one head row (n floats from p) ahead of its use. A head row is 256 bytes one
    /// (B, T, H·HS) row stride from the next, so the loops that copy, transpose or dot whole heads in and out of a
    /// work item's scratch (q, dCtx, ctx in; ctx, dQ, dK, dV out) waited on each row's misses in turn: 20 % of the
    /// fused attention's time in a baby-gpt step (perf.md, issue 14 session 8). Prefetches never fault, so a row past
    /// the end is harmless. Changes no value.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void PrefetchRow(float* p, int n)
    {
        if (!Sse.IsSupported)
            return;
        for (var i = 0; i < n; i += 16)
            Sse.Prefetch0(p + i);
    }
}
