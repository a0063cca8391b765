// Conformance of the matrix ops: GEMM in every transpose/batch layout and causal grouped-query attention
// (forward, backward, softmax) against naive float64 loops written from the contracts in Ops/IOps.cs.
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;
using static SddIlgpu.Training.Conformance.ErrorMeasure;

namespace SddIlgpu.Training.Conformance;

internal static class MatrixChecks
{
    public static IEnumerable<(string Name, double Tolerance, Func<Probe, double> Run)> All()
    {
        yield return ("gemm NN", 1e-4, p => Gemm(p, new GemmSpec(37, 29, 19), 1));
        yield return ("gemm NT (linear forward)", 1e-4, p => Gemm(p, new GemmSpec(33, 65, 70, TransB: true), 2));
        yield return ("gemm TN a,b (weight grad)", 1e-4, p => Gemm(p, new GemmSpec(31, 23, 45, TransA: true, Alpha: 0.5f, Beta: 0.75f), 3));
        yield return ("gemm TT", 1e-4, p => Gemm(p, new GemmSpec(17, 13, 9, TransA: true, TransB: true), 4));
        yield return ("gemm batched GQA (q.k^T)", 1e-4, GemmBatched);
        var s = new AttentionShape(2, 7, 4, 2, 6);
        yield return ("attention forward", 1e-4, p => Attention(p, s, backward: false));
        yield return ("attention backward", 1e-3, p => Attention(p, s, backward: true));
        yield return ("causal softmax forward", 1e-5, p => Softmax(p, backward: false));
        yield return ("causal softmax backward", 1e-4, p => Softmax(p, backward: true));
    }

    /// <summary>C = α·op(A)·op(B) + β·C over the whole C buffer (elements outside the matrices must stay).</summary>
    internal static double[] GemmReference(in GemmSpec s, float[] a, in MatrixLayout la, float[] b, in MatrixLayout lb, float[] c0, in MatrixLayout lc)
    {
        var c = ToDouble(c0);
        for (var z = 0; z < s.BatchCount; z++)
        {
            int outer = z / s.BatchInner, inner = z % s.BatchInner;
            long baseA = Base(la, outer, inner), baseB = Base(lb, outer, inner), baseC = Base(lc, outer, inner);
            for (var i = 0; i < s.M; i++)
                for (var j = 0; j < s.N; j++)
                {
                    double sum = 0;
                    for (var k = 0; k < s.K; k++)
                    {
                        var av = s.TransA ? a[baseA + (long)k * la.Ld + i] : a[baseA + (long)i * la.Ld + k];
                        var bv = s.TransB ? b[baseB + (long)j * lb.Ld + k] : b[baseB + (long)k * lb.Ld + j];
                        sum += (double)av * bv;
                    }
                    var at = baseC + (long)i * lc.Ld + j;
                    c[at] = s.Alpha * sum + (s.Beta == 0 ? 0 : s.Beta * (double)c0[at]);
                }
        }
        return c;
    }

    static long Base(in MatrixLayout l, int outer, int inner) => l.Offset + outer * l.OuterStride + inner / l.InnerDiv * l.InnerStride;

    static double Gemm(Probe p, GemmSpec s, int seed)
    {
        var (ar, ac) = s.TransA ? (s.K, s.M) : (s.M, s.K);
        var (br, bc) = s.TransB ? (s.N, s.K) : (s.K, s.N);
        float[] a = Probe.Random(ar * ac, seed), b = Probe.Random(br * bc, seed + 100), c0 = Probe.Random(s.M * s.N, seed + 200);
        MatrixLayout la = new(ac), lb = new(bc), lc = new(s.N);
        var c = p.Up(c0, (s.M, s.N), "c");
        p.Ops.Gemm.Gemm(s, p.Up(a, (ar, ac), "a"), la, p.Up(b, (br, bc), "b"), lb, c, lc);
        return MaxRelative(Probe.Down(c), GemmReference(s, a, la, b, lb, c0, lc));
    }

    /// <summary>Scores of attention: q (B,T,NH·HS) times kᵀ with k (B,T,KVH·HS), query head h reading kv head h/rep, into a C with an offset.</summary>
    static double GemmBatched(Probe p)
    {
        const int B = 2, T = 9, NH = 4, KVH = 2, HS = 5, Pad = 3;
        float[] q = Probe.Random(B * T * NH * HS, 5), k = Probe.Random(B * T * KVH * HS, 6), c0 = Probe.Random(Pad + B * NH * T * T, 7);
        var s = new GemmSpec(T, T, HS, TransB: true, Alpha: 0.4f, BatchOuter: B, BatchInner: NH);
        var la = new MatrixLayout(NH * HS, T * NH * HS, HS);
        var lb = new MatrixLayout(KVH * HS, T * KVH * HS, HS, NH / KVH);
        var lc = new MatrixLayout(T, NH * T * T, T * T, 1, Pad);
        var c = p.Up(c0, c0.Length, "scores");
        p.Ops.Gemm.Gemm(s, p.Up(q, q.Length, "q"), la, p.Up(k, k.Length, "k"), lb, c, lc);
        return MaxRelative(Probe.Down(c), GemmReference(s, q, la, k, lb, c0, lc));
    }

    static double Attention(Probe p, AttentionShape s, bool backward)
    {
        int qw = s.NH * s.HS, kw = s.KVH * s.HS;
        float[] q = Probe.Random(s.B * s.T * qw, 11), k = Probe.Random(s.B * s.T * kw, 12), v = Probe.Random(s.B * s.T * kw, 13);
        var dCtx = Probe.Random(q.Length, 14);
        var r = AttentionReference(s, q, k, v, dCtx);
        Tensor tq = p.Up(q, (s.B, s.T, qw), "q"), tk = p.Up(k, (s.B, s.T, kw), "k"), tv = p.Up(v, (s.B, s.T, kw), "v");
        var att = p.Ops.Attention;
        var materialized = att.SavedLength(s) == r.Probs.Length;
        Tensor saved = p.Zeros(checked((int)att.SavedLength(s)), "saved"), ctx = p.Zeros((s.B, s.T, qw), "ctx");
        att.Forward(s, tq, tk, tv, saved, ctx);
        if (!backward) // the saved state is P (B, NH, T, T) or the log-sum-exp L (B, NH, T)
            return Math.Max(MaxRelative(Probe.Down(ctx), r.Ctx),
                materialized ? Causal(Probe.Down(saved), r.Probs, s.B * s.NH, s.T) : MaxRelative(Probe.Down(saved), r.Lse));
        Tensor scratch = p.Zeros(checked((int)att.ScratchLength(s)), "scratch"), dQ = p.Zeros(tq.Shape, "dQ"), dK = p.Zeros(tk.Shape, "dK"), dV = p.Zeros(tv.Shape, "dV");
        att.Backward(s, p.Up(dCtx, ctx.Shape, "dCtx"), tq, tk, tv, ctx, saved, scratch, dQ, dK, dV);
        return Worst((Probe.Down(dQ), r.DQ), (Probe.Down(dK), r.DK), (Probe.Down(dV), r.DV));
    }

    /// <summary>Error over the causal (lower) triangle of (Z, T, T) matrices only; the masked half is unspecified.</summary>
    static double Causal(float[] actual, double[] expected, int z, int t)
    {
        var a = new List<float>();
        var e = new List<double>();
        for (var m = 0; m < z; m++)
            for (var i = 0; i < t; i++)
                for (var j = 0; j <= i; j++)
                {
                    a.Add(actual[(m * t + i) * t + j]);
                    e.Add(expected[(m * t + i) * t + j]);
                }
        return MaxRelative(a.ToArray(), e.ToArray());
    }

    /// <summary>Lse (B, NH, T) is each row's log Σ_j exp(scale·q·k_j), what FlashAttention-2 saves.</summary>
    internal sealed record AttentionResult(double[] Probs, double[] Lse, double[] Ctx, double[] DQ, double[] DK, double[] DV);

    /// <summary>Per (b, h): P = softmax(scale·q·kᵀ + mask), ctx = P·v; dP = dCtx·vᵀ, dS = P ⊙ (dP − Σ dP·P), dQ = scale·dS·k, dK += scale·dSᵀ·q, dV += Pᵀ·dCtx.</summary>
    internal static AttentionResult AttentionReference(AttentionShape s, float[] q, float[] k, float[] v, float[] dCtx)
    {
        int qw = s.NH * s.HS, kw = s.KVH * s.HS, T = s.T, HS = s.HS;
        double scale = 1.0 / Math.Sqrt(HS);
        double[] probs = new double[s.B * s.NH * T * T], lse = new double[s.B * s.NH * T], ctx = new double[q.Length], dQ = new double[q.Length], dK = new double[k.Length], dV = new double[v.Length];
        for (var b = 0; b < s.B; b++)
            for (var h = 0; h < s.NH; h++)
            {
                var g = h / s.Rep;
                int Q(int t, int d) => (b * T + t) * qw + h * HS + d;
                int K(int t, int d) => (b * T + t) * kw + g * HS + d;
                var pBase = (b * s.NH + h) * T * T;
                for (var i = 0; i < T; i++)
                {
                    var row = new double[i + 1];
                    for (var j = 0; j <= i; j++)
                    {
                        double dot = 0;
                        for (var d = 0; d < HS; d++)
                            dot += (double)q[Q(i, d)] * k[K(j, d)];
                        row[j] = dot * scale;
                    }
                    var max = row.Max();
                    var sum = row.Sum(x => Math.Exp(x - max));
                    lse[(b * s.NH + h) * T + i] = max + Math.Log(sum);
                    for (var j = 0; j <= i; j++)
                        probs[pBase + i * T + j] = Math.Exp(row[j] - max) / sum;
                    var dP = new double[i + 1];
                    double dot2 = 0;
                    for (var j = 0; j <= i; j++)
                    {
                        var pij = probs[pBase + i * T + j];
                        for (var d = 0; d < HS; d++)
                        {
                            ctx[Q(i, d)] += pij * v[K(j, d)];
                            dP[j] += (double)dCtx[Q(i, d)] * v[K(j, d)];
                            dV[K(j, d)] += pij * dCtx[Q(i, d)];
                        }
                        dot2 += dP[j] * pij;
                    }
                    for (var j = 0; j <= i; j++)
                    {
                        var dS = probs[pBase + i * T + j] * (dP[j] - dot2) * scale;
                        for (var d = 0; d < HS; d++)
                        {
                            dQ[Q(i, d)] += dS * k[K(j, d)];
                            dK[K(j, d)] += dS * q[Q(i, d)];
                        }
                    }
                }
            }
        return new AttentionResult(probs, lse, ctx, dQ, dK, dV);
    }

    static double Softmax(Probe p, bool backward)
    {
        const int Z = 3, T = 9;
        const float Scale = 0.7f;
        var scores = Probe.Random(Z * T * T, 21, 3f);
        var expected = new double[scores.Length];
        for (var m = 0; m < Z; m++)
            for (var i = 0; i < T; i++)
            {
                var at = (m * T + i) * T;
                var max = Enumerable.Range(0, i + 1).Max(j => Scale * (double)scores[at + j]);
                var sum = Enumerable.Range(0, i + 1).Sum(j => Math.Exp(Scale * (double)scores[at + j] - max));
                for (var j = 0; j <= i; j++)
                    expected[at + j] = Math.Exp(Scale * (double)scores[at + j] - max) / sum;
            }
        if (!backward)
        {
            var t = p.Up(scores, (Z, T, T), "scores");
            p.Ops.Attention.CausalSoftmaxForward(t, Scale);
            return Causal(Probe.Down(t), expected, Z, T);
        }
        var probs = Array.ConvertAll(expected, x => (float)x);
        var dProbs = Probe.Random(probs.Length, 22);
        var dS = new double[probs.Length];
        for (var row = 0; row < Z * T; row++)
        {
            var i = row % T;
            double dot = 0;
            for (var j = 0; j <= i; j++)
                dot += (double)dProbs[row * T + j] * probs[row * T + j];
            for (var j = 0; j <= i; j++)
                dS[row * T + j] = Scale * probs[row * T + j] * (dProbs[row * T + j] - dot);
        }
        var tdP = p.Up(dProbs, (Z, T, T), "dProbs");
        p.Ops.Attention.CausalSoftmaxBackward(p.Up(probs, (Z, T, T), "probs"), tdP, Scale);
        return MaxRelative(Probe.Down(tdP), dS);
    }
}
