// Shared plumbing of the managed CPU ops: fixed partitions run by WorkerPool (results never depend on which
// thread runs which part) and Vector256 helpers with a fixed lane and summation structure, so a sum over
// the same values gives the same bits whatever the memory address, thread count or timing.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace SddIlgpu.Tensors.Managed;

internal static class ManagedSimd
{
    /// <summary>Threads the managed ops fan out to (the partition of work never depends on it).</summary>
    public static readonly int Workers = Math.Max(1, Environment.ProcessorCount);

    /// <summary>Start of part <paramref name="p"/> of <paramref name="parts"/> equal parts of [0, n).</summary>
    public static int PartStart(int n, int parts, int p) => (int)((long)n * p / parts);

    /// <summary>
    /// Runs body(start, end) over a fixed split of [0, n) into <paramref name="parts"/> ranges, in parallel
    /// when the work is big enough. The split depends only on n and parts.
    /// </summary>
    public static void For(int n, int parts, long workPerItem, Action<int, int> body)
    {
        parts = Math.Clamp(parts, 1, Math.Max(1, n));
        if (parts == 1 || (long)n * workPerItem < 32_768)
        {
            for (var p = 0; p < parts; p++)
                body(PartStart(n, parts, p), PartStart(n, parts, p + 1));
            return;
        }
        WorkerPool.Run(parts, p => body(PartStart(n, parts, p), PartStart(n, parts, p + 1)));
    }

    /// <summary>As <see cref="For(int, int, long, Action{int, int})"/>, also passing the part index (to pick per-part scratch).</summary>
    public static void ForParts(int n, int parts, long workPerItem, Action<int, int, int> body)
    {
        parts = Math.Clamp(parts, 1, Math.Max(1, n));
        if (parts == 1 || (long)n * workPerItem < 32_768)
        {
            for (var p = 0; p < parts; p++)
                body(p, PartStart(n, parts, p), PartStart(n, parts, p + 1));
            return;
        }
        WorkerPool.Run(parts, p => body(p, PartStart(n, parts, p), PartStart(n, parts, p + 1)));
    }

    /// <summary>
    /// Runs body(worker, start, end) over [0, n) split into <paramref name="chunks"/> fixed ranges that the workers
    /// claim in turn, so one that starts late (its vCPU descheduled, or waking) leaves its share to the others
    /// instead of holding up the join. The ranges depend only on n and chunks; worker, in [0, Workers), picks
    /// per-worker scratch (<see cref="WorkerPool.CurrentWorker"/>).
    /// </summary>
    public static void ForChunks(int n, int chunks, long workPerItem, Action<int, int, int> body)
    {
        chunks = Math.Clamp(chunks, 1, Math.Max(1, n));
        if (chunks == 1 || (long)n * workPerItem < 32_768)
        {
            for (var c = 0; c < chunks; c++)
                body(WorkerPool.CurrentWorker, PartStart(n, chunks, c), PartStart(n, chunks, c + 1));
            return;
        }
        WorkerPool.Run(chunks, c => body(WorkerPool.CurrentWorker, PartStart(n, chunks, c), PartStart(n, chunks, c + 1)));
    }

    /// <summary>Runs body(start, end) over [0, n) split into one range per worker.</summary>
    public static void Rows(int n, long workPerItem, Action<int, int> body) => For(n, Workers, workPerItem, body);

    /// <summary>Σ x[i]·y[i]: eight lanes summed in a fixed tree, then the tail in order.</summary>
    public static float Dot(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        ref var rx = ref MemoryMarshal.GetReference(x);
        ref var ry = ref MemoryMarshal.GetReference(y);
        var acc = Vector256<float>.Zero;
        var i = 0;
        for (; i + 8 <= x.Length; i += 8)
            acc = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref rx, (nuint)i), Vector256.LoadUnsafe(ref ry, (nuint)i), acc);
        var s = Vector256.Sum(acc);
        for (; i < x.Length; i++)
            s += x[i] * y[i];
        return s;
    }

    /// <summary>Σ x[i] with the lane structure of <see cref="Dot"/>.</summary>
    public static float Sum(ReadOnlySpan<float> x)
    {
        var acc = Vector256<float>.Zero;
        var i = 0;
        ref var rx = ref MemoryMarshal.GetReference(x);
        for (; i + 8 <= x.Length; i += 8)
            acc += Vector256.LoadUnsafe(ref rx, (nuint)i);
        var s = Vector256.Sum(acc);
        for (; i < x.Length; i++)
            s += x[i];
        return s;
    }

    /// <summary>max x[i].</summary>
    public static float Max(ReadOnlySpan<float> x)
    {
        var m = float.NegativeInfinity;
        var i = 0;
        if (x.Length >= 8)
        {
            ref var rx = ref MemoryMarshal.GetReference(x);
            var acc = Vector256.Create(float.NegativeInfinity);
            for (; i + 8 <= x.Length; i += 8)
                acc = Vector256.Max(acc, Vector256.LoadUnsafe(ref rx, (nuint)i));
            for (var l = 0; l < 8; l++)
                m = MathF.Max(m, acc[l]);
        }
        for (; i < x.Length; i++)
            m = MathF.Max(m, x[i]);
        return m;
    }

    /// <summary>y[i] += a·x[i] (fused).</summary>
    public static void Axpy(float a, ReadOnlySpan<float> x, Span<float> y)
    {
        var va = Vector256.Create(a);
        var i = 0;
        if (x.Length >= 8)
        {
            ref var rx = ref MemoryMarshal.GetReference(x);
            ref var ry = ref MemoryMarshal.GetReference(y);
            for (; i + 8 <= x.Length; i += 8)
                Vector256.FusedMultiplyAdd(va, Vector256.LoadUnsafe(ref rx, (nuint)i), Vector256.LoadUnsafe(ref ry, (nuint)i)).StoreUnsafe(ref ry, (nuint)i);
        }
        for (; i < x.Length; i++)
            y[i] = MathF.FusedMultiplyAdd(a, x[i], y[i]);
    }

    /// <summary>y[i] = exp(x[i] − shift), every element through the same Vector256 exp (tail padded), returns Σ y in a fixed order.</summary>
    public static float ExpShifted(ReadOnlySpan<float> x, float shift, Span<float> y)
    {
        var vs = Vector256.Create(shift);
        var acc = Vector256<float>.Zero;
        var i = 0;
        if (x.Length >= 8)
        {
            ref var rx = ref MemoryMarshal.GetReference(x);
            ref var ry = ref MemoryMarshal.GetReference(y);
            if (Vector512.IsHardwareAccelerated)
            {
                // 16 lanes per exp, each lane's ops as in ExpVector (the same bits); the sum still adds 8 lanes at a time.
                var vs16 = Vector512.Create(shift);
                for (; i + 16 <= x.Length; i += 16)
                {
                    var e = ExpVector(Vector512.LoadUnsafe(ref rx, (nuint)i) - vs16);
                    e.StoreUnsafe(ref ry, (nuint)i);
                    acc += e.GetLower();
                    acc += e.GetUpper();
                }
            }
            for (; i + 8 <= x.Length; i += 8)
            {
                var e = ExpVector(Vector256.LoadUnsafe(ref rx, (nuint)i) - vs);
                e.StoreUnsafe(ref ry, (nuint)i);
                acc += e;
            }
        }
        var s = Vector256.Sum(acc);
        if (i < x.Length)
        {
            Span<float> tail = stackalloc float[8];
            tail.Fill(shift);
            x[i..].CopyTo(tail);
            var e = ExpVector(Vector256.Create<float>(tail) - vs);
            for (var l = 0; i < x.Length; i++, l++)
            {
                y[i] = e[l];
                s += e[l];
            }
        }
        return s;
    }

    /// <summary>
    /// exp of each lane in single precision, the Cephes expf scheme (S. L. Moshier, Cephes Math Library, expf.c): x =
    /// n·ln 2 + r with n = ⌊x·log₂e + ½⌋ and ln 2 split in two constants, so |r| ≤ ½ ln 2; exp(r) by Cephes' degree-7
    /// polynomial 1 + r + r²·P(r); then 2ⁿ applied as two exact powers of two (n up to 128 near float's overflow).
    /// Measured ≤ 1 ULP from the float64 exp over [−87.3, 88.7] (ManagedOpsTests). NaN gives NaN, x &lt; −87.34
    /// (below the smallest normal float) gives 0, x &gt; 88.72 gives +∞. About four times cheaper than
    /// <see cref="Vector256.Exp(Vector256{float})"/>, which evaluates in float64.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> ExpVector(Vector256<float> x)
    {
        var lo = Vector256.Create(-87.33654f);
        var c = Vector256.Min(Vector256.Max(x, lo), Vector256.Create(89f)); // exp(89) overflows in the last multiply
        var n = Vector256.Floor(Vector256.FusedMultiplyAdd(c, Vector256.Create(1.44269504088896341f), Vector256.Create(0.5f)));
        var r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-0.693359375f), c);
        r = Vector256.FusedMultiplyAdd(n, Vector256.Create(2.12194440e-4f), r);
        var p = Vector256.FusedMultiplyAdd(Vector256.Create(1.9875691500e-4f), r, Vector256.Create(1.3981999507e-3f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(8.3334519073e-3f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(4.1665795894e-2f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1.6666665459e-1f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(5.0000001201e-1f));
        p = Vector256.FusedMultiplyAdd(p, r * r, r) + Vector256<float>.One;
        var ni = Vector256.ConvertToInt32(n);
        var half = ni >> 1;
        var bias = Vector256.Create(127);
        var scaled = p * ((half + bias) << 23).AsSingle() * ((ni - half + bias) << 23).AsSingle();
        return Vector256.ConditionalSelect(Vector256.LessThan(x, lo), Vector256<float>.Zero, scaled);
    }

    /// <summary>
    /// <see cref="ExpVector(Vector256{float})"/> on 16 lanes: the same operations in the same order per lane, so each
    /// lane's bits equal the 8-lane version's (ManagedOpsTests compares them); twice the elements per instruction.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> ExpVector(Vector512<float> x)
    {
        var lo = Vector512.Create(-87.33654f);
        var c = Vector512.Min(Vector512.Max(x, lo), Vector512.Create(89f));
        var n = Vector512.Floor(Vector512.FusedMultiplyAdd(c, Vector512.Create(1.44269504088896341f), Vector512.Create(0.5f)));
        var r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-0.693359375f), c);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(2.12194440e-4f), r);
        var p = Vector512.FusedMultiplyAdd(Vector512.Create(1.9875691500e-4f), r, Vector512.Create(1.3981999507e-3f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(8.3334519073e-3f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(4.1665795894e-2f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1.6666665459e-1f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(5.0000001201e-1f));
        p = Vector512.FusedMultiplyAdd(p, r * r, r) + Vector512<float>.One;
        var ni = Vector512.ConvertToInt32(n);
        var half = ni >> 1;
        var bias = Vector512.Create(127);
        var scaled = p * ((half + bias) << 23).AsSingle() * ((ni - half + bias) << 23).AsSingle();
        return Vector512.ConditionalSelect(Vector512.LessThan(x, lo), Vector512<float>.Zero, scaled);
    }

    /// <summary>exp of one value through the same Vector256 exp as <see cref="ExpShifted"/>.</summary>
    public static float Exp(float x) => ExpVector(Vector256.Create(x)).ToScalar();

    /// <summary>y[i] += x[i].</summary>
    public static void AddTo(ReadOnlySpan<float> x, Span<float> y)
    {
        var i = 0;
        if (x.Length >= 8)
        {
            ref var rx = ref MemoryMarshal.GetReference(x);
            ref var ry = ref MemoryMarshal.GetReference(y);
            for (; i + 8 <= x.Length; i += 8)
                (Vector256.LoadUnsafe(ref ry, (nuint)i) + Vector256.LoadUnsafe(ref rx, (nuint)i)).StoreUnsafe(ref ry, (nuint)i);
        }
        for (; i < x.Length; i++)
            y[i] += x[i];
    }

    /// <summary>y[i] = σ(x[i]) = 1/(1 + exp(−x[i])), every element through the same Vector256 exp (tail padded).</summary>
    public static void Sigmoid(ReadOnlySpan<float> x, Span<float> y)
    {
        var one = Vector256<float>.One;
        var i = 0;
        if (x.Length >= 8)
        {
            ref var rx = ref MemoryMarshal.GetReference(x);
            ref var ry = ref MemoryMarshal.GetReference(y);
            if (Vector512.IsHardwareAccelerated)
            {
                var one16 = Vector512<float>.One; // 16 lanes, each as the 8-lane loop computes it
                for (; i + 16 <= x.Length; i += 16)
                    (one16 / (one16 + ExpVector(-Vector512.LoadUnsafe(ref rx, (nuint)i)))).StoreUnsafe(ref ry, (nuint)i);
            }
            for (; i + 8 <= x.Length; i += 8)
                (one / (one + ExpVector(-Vector256.LoadUnsafe(ref rx, (nuint)i)))).StoreUnsafe(ref ry, (nuint)i);
        }
        if (i < x.Length)
        {
            Span<float> tail = stackalloc float[8];
            tail.Clear();
            x[i..].CopyTo(tail);
            var e = one / (one + ExpVector(-Vector256.Create<float>(tail)));
            for (var l = 0; i < x.Length; i++, l++)
                y[i] = e[l];
        }
    }
}
