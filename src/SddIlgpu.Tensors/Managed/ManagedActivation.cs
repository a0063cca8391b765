// SwiGLU and last-axis concatenation on the host (spec §3 FFN): s = up ⊙ silu(gate), silu(g) = g·σ(g);
// backward dUp = dS·silu(g), dGate = dS·up·σ(g)·(1 + g·(1 − σ(g))). Rows split into fixed ranges.
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Managed;

internal sealed class ManagedActivation(Device device) : IActivationOps
{
    /// <summary>Gate values per σ batch (a stack buffer).</summary>
    const int Chunk = 256;

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
                for (var i0 = 0; i0 < f; i0 += Chunk)
                {
                    var n = Math.Min(Chunk, f - i0);
                    ManagedSimd.Sigmoid(ug.Slice(r * 2 * f + f + i0, n), sig);
                    for (var i = 0; i < n; i++)
                    {
                        float up = ug[r * 2 * f + i0 + i], gate = ug[r * 2 * f + f + i0 + i];
                        ss[r * f + i0 + i] = up * (gate * sig[i]);
                    }
                }
        });
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
                for (var i0 = 0; i0 < f; i0 += Chunk)
                {
                    var n = Math.Min(Chunk, f - i0);
                    ManagedSimd.Sigmoid(ug.Slice(r * 2 * f + f + i0, n), sigs);
                    for (var i = 0; i < n; i++)
                    {
                        float up = ug[r * 2 * f + i0 + i], gate = ug[r * 2 * f + f + i0 + i], d = ds[r * f + i0 + i], sig = sigs[i];
                        dug[r * 2 * f + i0 + i] = d * gate * sig;
                        dug[r * 2 * f + f + i0 + i] = d * up * sig * (1f + gate * (1f - sig));
                    }
                }
        });
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

    static (int Rows, int F) Split(Tensor upGate, Tensor s, string op)
    {
        var f = s.Shape.Last;
        var rows = (int)(s.Length / f);
        if (upGate.Length != 2L * s.Length || upGate.Shape.Last != 2 * f)
            throw new ArgumentException($"{op}: {upGate.Name} {upGate.Shape} must be (R, 2F) for {s.Name} {s.Shape} (R, F).");
        return (rows, f);
    }
}
