// SwiGLU and last-axis concatenation on the host (spec §3 FFN): s = up ⊙ silu(gate), silu(g) = g·σ(g);
// backward dUp = dS·silu(g), dGate = dS·up·σ(g)·(1 + g·(1 − σ(g))). Rows split into fixed ranges.
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Managed;

internal sealed class ManagedActivation(Device device) : IActivationOps
{
    /// <summary>Gate values per σ batch (a stack buffer).</summary>
    internal const int Chunk = 256;

    public void SwiGluForward(Tensor upGate, Tensor s)
    {
        var (rows, f) = Split(upGate, s, "SwiGluForward");
        Begin();
        ManagedSimd.Rows(rows, 2L * f, (r0, r1) =>
        {
            ReadOnlySpan<float> ug = upGate.HostSpan();
            var ss = s.HostSpan();
            Span<float> sig = stackalloc float[Chunk];
            for (var r = r0; r < r1; r++)
                SwiGluRow(ug.Slice(r * 2 * f, 2 * f), ss.Slice(r * f, f), sig);
        });
    }

    /// <summary>One row: s (F) = up ⊙ silu(gate) from [up | gate] (2F), σ in batches of <see cref="Chunk"/> through <paramref name="sig"/>.</summary>
    internal static void SwiGluRow(ReadOnlySpan<float> upGate, Span<float> s, Span<float> sig)
    {
        var f = s.Length;
        for (var i0 = 0; i0 < f; i0 += Chunk)
        {
            var n = Math.Min(Chunk, f - i0);
            ManagedSimd.Sigmoid(upGate.Slice(f + i0, n), sig);
            SwiGluRange(upGate.Slice(i0, n), upGate.Slice(f + i0, n), sig[..n], s.Slice(i0, n));
        }
    }

    public void SwiGluBackward(Tensor dS, Tensor upGate, Tensor dUpGate)
    {
        var (rows, f) = Split(upGate, dS, "SwiGluBackward");
        ManagedElementwise.SameLength(upGate, dUpGate, "SwiGluBackward");
        Begin();
        ManagedSimd.Rows(rows, 4L * f, (r0, r1) =>
        {
            ReadOnlySpan<float> ug = upGate.HostSpan(), ds = dS.HostSpan();
            var dug = dUpGate.HostSpan();
            Span<float> sigs = stackalloc float[Chunk];
            for (var r = r0; r < r1; r++)
                SwiGluBackwardRow(ds.Slice(r * f, f), ug.Slice(r * 2 * f, 2 * f), dug.Slice(r * 2 * f, 2 * f), sigs);
        });
    }

    /// <summary>One row: [dUp | dGate] (2F) from dS (F) and [up | gate] (2F), σ in batches through <paramref name="sig"/>.</summary>
    internal static void SwiGluBackwardRow(ReadOnlySpan<float> dS, ReadOnlySpan<float> upGate, Span<float> dUpGate, Span<float> sig)
    {
        var f = dS.Length;
        for (var i0 = 0; i0 < f; i0 += Chunk)
        {
            var n = Math.Min(Chunk, f - i0);
            ManagedSimd.Sigmoid(upGate.Slice(f + i0, n), sig);
            SwiGluBackwardRange(upGate.Slice(i0, n), upGate.Slice(f + i0, n), sig[..n], dS.Slice(i0, n), dUpGate.Slice(i0, n), dUpGate.Slice(f + i0, n));
        }
    }

    /// <summary>s = up·(gate·σ), vectorised (16 lanes where AVX-512 runs, then 8) with the scalar tail in the same operation order.</summary>
    static void SwiGluRange(ReadOnlySpan<float> up, ReadOnlySpan<float> gate, ReadOnlySpan<float> sig, Span<float> s)
    {
        ref var ru = ref MemoryMarshal.GetReference(up);
        ref var rg = ref MemoryMarshal.GetReference(gate);
        ref var rs = ref MemoryMarshal.GetReference(sig);
        ref var ro = ref MemoryMarshal.GetReference(s);
        var i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i + 16 <= s.Length; i += 16)
                (Vector512.LoadUnsafe(ref ru, (nuint)i) * (Vector512.LoadUnsafe(ref rg, (nuint)i) * Vector512.LoadUnsafe(ref rs, (nuint)i))).StoreUnsafe(ref ro, (nuint)i);
        for (; i + 8 <= s.Length; i += 8)
            (Vector256.LoadUnsafe(ref ru, (nuint)i) * (Vector256.LoadUnsafe(ref rg, (nuint)i) * Vector256.LoadUnsafe(ref rs, (nuint)i))).StoreUnsafe(ref ro, (nuint)i);
        for (; i < s.Length; i++)
            s[i] = up[i] * (gate[i] * sig[i]);
    }

    /// <summary>dUp = dS·gate·σ, dGate = dS·up·σ·(1 + gate·(1 − σ)); dUp/dGate may alias nothing they read later.</summary>
    static void SwiGluBackwardRange(ReadOnlySpan<float> up, ReadOnlySpan<float> gate, ReadOnlySpan<float> sig, ReadOnlySpan<float> dS,
        Span<float> dUp, Span<float> dGate)
    {
        ref var ru = ref MemoryMarshal.GetReference(up);
        ref var rg = ref MemoryMarshal.GetReference(gate);
        ref var rs = ref MemoryMarshal.GetReference(sig);
        ref var rd = ref MemoryMarshal.GetReference(dS);
        ref var rdu = ref MemoryMarshal.GetReference(dUp);
        ref var rdg = ref MemoryMarshal.GetReference(dGate);
        var i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var one16 = Vector512<float>.One;
            for (; i + 16 <= dS.Length; i += 16)
            {
                Vector512<float> u = Vector512.LoadUnsafe(ref ru, (nuint)i), g = Vector512.LoadUnsafe(ref rg, (nuint)i);
                Vector512<float> sg = Vector512.LoadUnsafe(ref rs, (nuint)i), d = Vector512.LoadUnsafe(ref rd, (nuint)i);
                (d * g * sg).StoreUnsafe(ref rdu, (nuint)i);
                (d * u * sg * (one16 + g * (one16 - sg))).StoreUnsafe(ref rdg, (nuint)i);
            }
        }
        var one = Vector256<float>.One;
        for (; i + 8 <= dS.Length; i += 8)
        {
            Vector256<float> u = Vector256.LoadUnsafe(ref ru, (nuint)i), g = Vector256.LoadUnsafe(ref rg, (nuint)i);
            Vector256<float> sg = Vector256.LoadUnsafe(ref rs, (nuint)i), d = Vector256.LoadUnsafe(ref rd, (nuint)i);
            (d * g * sg).StoreUnsafe(ref rdu, (nuint)i);
            (d * u * sg * (one + g * (one - sg))).StoreUnsafe(ref rdg, (nuint)i);
        }
        for (; i < dS.Length; i++)
        {
            float u = up[i], g = gate[i], sg = sig[i], d = dS[i];
            dUp[i] = d * g * sg;
            dGate[i] = d * u * sg * (1f + g * (1f - sg));
        }
    }

    public void ConcatLast(Tensor a, Tensor b, Tensor y) => Interleave(a, b, y, concat: true);

    public void SplitLast(Tensor y, Tensor a, Tensor b) => Interleave(a, b, y, concat: false);

    /// <summary>Row r of y is [a row r | b row r]: copy into y (concat) or out of it (split).</summary>
    void Interleave(Tensor a, Tensor b, Tensor y, bool concat)
    {
        int na = a.Shape.Last, nb = b.Shape.Last;
        var rows = (int)(a.Length / na);
        if (b.Length / nb != rows || y.Length != (long)rows * (na + nb))
            throw new ArgumentException($"Concat/Split: {a.Name} {a.Shape}, {b.Name} {b.Shape} and {y.Name} {y.Shape} must share {rows} rows with y = [a | b].");
        Begin();
        ManagedSimd.Rows(rows, na + nb, (r0, r1) =>
        {
            Span<float> sa = a.HostSpan(), sb = b.HostSpan(), sy = y.HostSpan();
            for (var r = r0; r < r1; r++)
            {
                var ya = sy.Slice(r * (na + nb), na);
                var yb = sy.Slice(r * (na + nb) + na, nb);
                if (concat)
                {
                    sa.Slice(r * na, na).CopyTo(ya);
                    sb.Slice(r * nb, nb).CopyTo(yb);
                }
                else
                {
                    ya.CopyTo(sa.Slice(r * na, na));
                    yb.CopyTo(sb.Slice(r * nb, nb));
                }
            }
        });
    }

    void Begin()
    {
        device.ThrowIfDisposed();
        device.Counters.CountLaunch();
    }

    internal static (int Rows, int F) Split(Tensor upGate, Tensor s, string op)
    {
        var f = s.Shape.Last;
        var rows = (int)(s.Length / f);
        if (upGate.Length != 2L * s.Length || upGate.Shape.Last != 2 * f)
            throw new ArgumentException($"{op}: {upGate.Name} {upGate.Shape} must be (R, 2F) for {s.Name} {s.Shape} (R, F).");
        return (rows, f);
    }
}
