// Causal grouped-query attention on the host, fused per head (spec §3): scores = q·kᵀ/√HS, causal softmax,
// ctx = P·v; backward dV = Pᵀ·dCtx, dP = dCtx·vᵀ, dS = P⊙(dP − Σ dP·P)/√HS, dQ = dS·k, dK = dSᵀ·q.
// Forward runs per (b, h); backward per (b, kv head), its query heads in order, so dK, dV need no atomics.
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Managed;

internal sealed class ManagedAttention(Device device) : IAttentionOps
{
    /// <summary>Per-part (HS, T) transposed k or v of one head, grown once to the largest call.</summary>
    readonly float[][] transposed = new float[ManagedSimd.Workers][];

    public void Forward(in AttentionShape s, Tensor q, Tensor k, Tensor v, Tensor probs, Tensor ctx)
    {
        Check(s, q, k, v, probs, ctx);
        Begin();
        var sh = s;
        ManagedSimd.ForParts(s.B * s.NH, ManagedSimd.Workers, (long)s.T * s.T * s.HS, (part, z0, z1) =>
        {
            var kT = Scratch(part, sh.T * sh.HS);
            for (var z = z0; z < z1; z++)
                ForwardHead(sh, z / sh.NH, z % sh.NH, q.HostSpan(), k.HostSpan(), v.HostSpan(), probs.HostSpan(), ctx.HostSpan(), kT);
        });
    }

    static void ForwardHead(in AttentionShape s, int b, int h, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        Span<float> probs, Span<float> ctx, float[] kT)
    {
        int T = s.T, HS = s.HS, g = h / s.Rep;
        Transpose(k, b, g, s.KVH, T, HS, kT);
        for (var t = 0; t < T; t++)
        {
            var qt = q.Slice(Row(b, t, h, s.NH, T, HS), HS);
            var row = probs.Slice(((b * s.NH + h) * T + t) * T, T);
            Scores(qt, kT, T, t, row);
            SoftmaxRow(row, t, s.Scale);
            var ct = ctx.Slice(Row(b, t, h, s.NH, T, HS), HS);
            ct.Clear();
            for (var j = 0; j <= t; j++)
                ManagedSimd.Axpy(row[j], v.Slice(Row(b, j, g, s.KVH, T, HS), HS), ct);
        }
    }

    public void Backward(in AttentionShape s, Tensor dCtx, Tensor q, Tensor k, Tensor v, Tensor probs, Tensor dProbs,
        Tensor dQ, Tensor dK, Tensor dV)
    {
        Check(s, q, k, v, probs, dCtx);
        Check(s, dQ, dK, dV, dProbs, dCtx);
        Begin();
        var sh = s;
        ManagedSimd.ForParts(s.B * s.KVH, ManagedSimd.Workers, 2L * s.Rep * s.T * s.T * s.HS, (part, z0, z1) =>
        {
            var vT = Scratch(part, sh.T * sh.HS);
            for (var z = z0; z < z1; z++)
                BackwardKvHead(sh, z / sh.KVH, z % sh.KVH, dCtx, q, k, v, probs, dProbs, dQ, dK, dV, vT);
        });
    }

    static void BackwardKvHead(in AttentionShape s, int b, int g, Tensor dCtx, Tensor q, Tensor k, Tensor v, Tensor probs,
        Tensor dProbs, Tensor dQ, Tensor dK, Tensor dV, float[] vT)
    {
        int T = s.T, HS = s.HS;
        ReadOnlySpan<float> dc = dCtx.HostSpan(), qs = q.HostSpan(), ks = k.HostSpan(), ps = probs.HostSpan();
        Span<float> dps = dProbs.HostSpan(), dqs = dQ.HostSpan(), dks = dK.HostSpan(), dvs = dV.HostSpan();
        Transpose(v.HostSpan(), b, g, s.KVH, T, HS, vT);
        for (var j = 0; j < T; j++)
        {
            dks.Slice(Row(b, j, g, s.KVH, T, HS), HS).Clear();
            dvs.Slice(Row(b, j, g, s.KVH, T, HS), HS).Clear();
        }
        for (var h = g * s.Rep; h < (g + 1) * s.Rep; h++)
            for (var t = 0; t < T; t++)
            {
                var dct = dc.Slice(Row(b, t, h, s.NH, T, HS), HS);
                var p = ps.Slice(((b * s.NH + h) * T + t) * T, T);
                var dS = dps.Slice(((b * s.NH + h) * T + t) * T, T);
                Scores(dct, vT, T, t, dS); // dP[j] = dCtx_t · v_j
                var dot = 0f;
                for (var j = 0; j <= t; j++)
                {
                    ManagedSimd.Axpy(p[j], dct, dvs.Slice(Row(b, j, g, s.KVH, T, HS), HS));
                    dot += dS[j] * p[j];
                }
                for (var j = 0; j <= t; j++)
                    dS[j] = s.Scale * p[j] * (dS[j] - dot);
                var qt = qs.Slice(Row(b, t, h, s.NH, T, HS), HS);
                var dqt = dqs.Slice(Row(b, t, h, s.NH, T, HS), HS);
                dqt.Clear();
                for (var j = 0; j <= t; j++)
                {
                    ManagedSimd.Axpy(dS[j], ks.Slice(Row(b, j, g, s.KVH, T, HS), HS), dqt);
                    ManagedSimd.Axpy(dS[j], qt, dks.Slice(Row(b, j, g, s.KVH, T, HS), HS));
                }
            }
    }

    public void CausalSoftmaxForward(Tensor scores, float scale)
    {
        var (rows, T) = Square(scores, "CausalSoftmaxForward");
        Begin();
        ManagedSimd.Rows(rows, 4L * T, (r0, r1) =>
        {
            var sc = scores.HostSpan();
            for (var r = r0; r < r1; r++)
                SoftmaxRow(sc.Slice(r * T, T), r % T, scale);
        });
    }

    public void CausalSoftmaxBackward(Tensor probs, Tensor dProbs, float scale)
    {
        var (rows, T) = Square(probs, "CausalSoftmaxBackward");
        ManagedElementwise.SameLength(probs, dProbs, "CausalSoftmaxBackward");
        Begin();
        ManagedSimd.Rows(rows, 4L * T, (r0, r1) =>
        {
            ReadOnlySpan<float> ps = probs.HostSpan();
            var dps = dProbs.HostSpan();
            for (var r = r0; r < r1; r++)
            {
                int t = r % T;
                var p = ps.Slice(r * T, T);
                var d = dps.Slice(r * T, T);
                var dot = 0f;
                for (var j = 0; j <= t; j++)
                    dot += d[j] * p[j];
                for (var j = 0; j <= t; j++)
                    d[j] = scale * p[j] * (d[j] - dot);
                d[(t + 1)..].Clear();
            }
        });
    }

    /// <summary>row[j] = x · m_j for j ≤ t (mT is m transposed, (HS, T)), vectorised over j, d summed in order.</summary>
    static void Scores(ReadOnlySpan<float> x, float[] mT, int T, int t, Span<float> row)
    {
        var live = row[..(t + 1)];
        live.Clear();
        for (var d = 0; d < x.Length; d++)
            ManagedSimd.Axpy(x[d], mT.AsSpan(d * T, t + 1), live);
    }

    /// <summary>In place: row[j] = softmax(scale·row)[j] over j ≤ t, 0 past t.</summary>
    static void SoftmaxRow(Span<float> row, int t, float scale)
    {
        var live = row[..(t + 1)];
        for (var j = 0; j <= t; j++)
            live[j] *= scale;
        var sum = ManagedSimd.ExpShifted(live, ManagedSimd.Max(live), live);
        for (var j = 0; j <= t; j++)
            live[j] /= sum;
        row[(t + 1)..].Clear();
    }

    /// <summary>mT[d·T + j] = m[b, j, head, d].</summary>
    static void Transpose(ReadOnlySpan<float> m, int b, int head, int heads, int T, int HS, float[] mT)
    {
        for (var j = 0; j < T; j++)
        {
            var src = m.Slice(Row(b, j, head, heads, T, HS), HS);
            for (var d = 0; d < HS; d++)
                mT[d * T + j] = src[d];
        }
    }

    static int Row(int b, int t, int head, int heads, int T, int HS) => ((b * T + t) * heads + head) * HS;

    float[] Scratch(int part, int length)
    {
        if (transposed[part] is not { } a || a.Length < length)
            transposed[part] = a = new float[length];
        return a;
    }

    void Begin()
    {
        device.ThrowIfDisposed();
        device.Counters.CountLaunch();
    }

    static (int Rows, int T) Square(Tensor scores, string op)
    {
        var T = scores.Shape.Last;
        if (scores.Length % ((long)T * T) != 0)
            throw new ArgumentException($"{op}: {scores.Name} {scores.Shape} must be (Z, T, T).");
        return ((int)(scores.Length / T), T);
    }

    static void Check(in AttentionShape s, Tensor q, Tensor k, Tensor v, Tensor probs, Tensor ctx)
    {
        if (s.B < 1 || s.T < 1 || s.HS < 1 || s.KVH < 1 || s.NH % s.KVH != 0)
            throw new ArgumentException($"Attention: invalid shape {s} (KVH must divide NH).");
        long qLen = (long)s.B * s.T * s.NH * s.HS, kvLen = (long)s.B * s.T * s.KVH * s.HS;
        q.ExpectLength(qLen, "Attention q/dQ (B, T, NH·HS)");
        ctx.ExpectLength(qLen, "Attention ctx/dCtx (B, T, NH·HS)");
        k.ExpectLength(kvLen, "Attention k/dK (B, T, KVH·HS)");
        v.ExpectLength(kvLen, "Attention v/dV (B, T, KVH·HS)");
        probs.ExpectLength((long)s.B * s.NH * s.T * s.T, "Attention probs/dProbs (B, NH, T, T)");
    }
}
