// A naive host implementation of the op families the layers call (double accumulation, plain loops over
// HostSpan), written from the IOps.cs contracts. It checks the layers independently of the kernels: the
// golden tests run the model on it as well as on the real devices, so a failure points at layers or kernels.
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tests.Layers;

internal sealed class NaiveOps(Device device) :
    IGemmOps, INormOps, IRopeOps, IAttentionOps, IActivationOps, IEmbeddingOps, ILossOps, IOptimizerOps
{
    /// <summary>The device's elementwise, reduction and random kernels with every other family naive.</summary>
    public static OpSet Create(Device device)
    {
        var n = new NaiveOps(device);
        return new OpSet
        {
            Gemm = n, Norm = n, Rope = n, Attention = n, Activation = n, Embedding = n, Loss = n, Optimizer = n,
            Elementwise = device.Ops.Elementwise, Reduction = device.Ops.Reduction, Random = device.Ops.Random,
        };
    }

    Span<float> S(Tensor t)
    {
        device.Synchronize();
        return t.HostSpan();
    }

    public void Gemm(in GemmSpec g, Tensor a, in MatrixLayout la, Tensor b, in MatrixLayout lb, Tensor c, in MatrixLayout lc)
    {
        Span<float> A = S(a), B = S(b), Cm = S(c);
        for (var outer = 0; outer < g.BatchOuter; outer++)
            for (var inner = 0; inner < g.BatchInner; inner++)
            {
                long oa = Base(la, outer, inner), ob = Base(lb, outer, inner), oc = Base(lc, outer, inner);
                for (var i = 0; i < g.M; i++)
                    for (var j = 0; j < g.N; j++)
                    {
                        double s = 0;
                        for (var k = 0; k < g.K; k++)
                            s += (double)A[(int)(oa + (g.TransA ? (long)k * la.Ld + i : (long)i * la.Ld + k))]
                                * B[(int)(ob + (g.TransB ? (long)j * lb.Ld + k : (long)k * lb.Ld + j))];
                        var at = (int)(oc + (long)i * lc.Ld + j);
                        Cm[at] = (float)(g.Alpha * s + (g.Beta == 0 ? 0 : g.Beta * Cm[at]));
                    }
            }
    }

    static long Base(in MatrixLayout l, int outer, int inner) => l.Offset + outer * l.OuterStride + inner / l.InnerDiv * l.InnerStride;

    public void Forward(Tensor x, Tensor? gain, Tensor y, Tensor rstd, int groupSize, float eps)
    {
        Span<float> X = S(x), Y = S(y), R = S(rstd);
        var G = gain is null ? default : S(gain);
        for (var grp = 0; grp < X.Length / groupSize; grp++)
        {
            double ss = 0;
            for (var i = 0; i < groupSize; i++)
                ss += (double)X[grp * groupSize + i] * X[grp * groupSize + i];
            var r = 1 / Math.Sqrt(ss / groupSize + eps);
            R[grp] = (float)r;
            for (var i = 0; i < groupSize; i++)
                Y[grp * groupSize + i] = (float)(X[grp * groupSize + i] * r * (gain is null ? 1 : G[i]));
        }
    }

    public void Backward(Tensor dY, Tensor x, Tensor? gain, Tensor rstd, Tensor dX, Tensor? dGain, int groupSize)
    {
        Span<float> D = S(dY), X = S(x), R = S(rstd), DX = S(dX);
        var G = gain is null ? default : S(gain);
        var DG = dGain is null ? default : S(dGain);
        for (var grp = 0; grp < X.Length / groupSize; grp++)
        {
            double r = R[grp], dot = 0;
            var o = grp * groupSize;
            for (var i = 0; i < groupSize; i++)
                dot += D[o + i] * (gain is null ? 1.0 : G[i]) * X[o + i];
            for (var i = 0; i < groupSize; i++)
            {
                double g = gain is null ? 1 : G[i], dy = D[o + i], xv = X[o + i];
                if (dGain is not null)
                    DG[i] += (float)(dy * xv * r);
                DX[o + i] = (float)(r * (g * dy - xv * r * r * dot / groupSize));
            }
        }
    }

    public void Forward(Tensor x, Tensor y, Tensor table, int headDim) => Rotate(x, y, table, headDim, 1);

    public void Backward(Tensor dY, Tensor dX, Tensor table, int headDim) => Rotate(dY, dX, table, headDim, -1);

    void Rotate(Tensor xt, Tensor yt, Tensor tt, int hs, int sign)
    {
        Span<float> x = S(xt), y = S(yt), table = S(tt);
        int half = hs / 2, t = table.Length / hs, width = xt.Shape.Last;
        for (var row = 0; row < x.Length / width; row++)
            for (var h = 0; h < width / hs; h++)
            {
                var o = row * width + h * hs;
                var pos = row % t;
                for (var i = 0; i < half; i++)
                {
                    double cos = table[(pos * half + i) * 2], sin = sign * table[(pos * half + i) * 2 + 1];
                    double a = x[o + i], b = x[o + i + half];
                    y[o + i] = (float)(a * cos - b * sin);
                    y[o + i + half] = (float)(b * cos + a * sin);
                }
            }
    }

    public long SavedLength(in AttentionShape s) => AttentionStorage.Materialized.SavedLength(s);

    public long ScratchLength(in AttentionShape s) => AttentionStorage.Materialized.ScratchLength(s);

    public void Forward(in AttentionShape s, Tensor q, Tensor k, Tensor v, Tensor probs, Tensor ctx)
    {
        Span<float> Q = S(q), K = S(k), V = S(v), P = S(probs), O = S(ctx);
        int T = s.T, HS = s.HS, qw = s.NH * HS, kw = s.KVH * HS;
        for (var b = 0; b < s.B; b++)
            for (var h = 0; h < s.NH; h++)
            {
                var kh = h / s.Rep;
                for (var i = 0; i < T; i++)
                {
                    var prow = ((b * s.NH + h) * T + i) * T;
                    var max = double.NegativeInfinity;
                    var sc = new double[T];
                    for (var j = 0; j <= i; j++)
                    {
                        double dot = 0;
                        for (var d = 0; d < HS; d++)
                            dot += (double)Q[(b * T + i) * qw + h * HS + d] * K[(b * T + j) * kw + kh * HS + d];
                        sc[j] = dot * s.Scale;
                        max = Math.Max(max, sc[j]);
                    }
                    double sum = 0;
                    for (var j = 0; j <= i; j++)
                        sum += sc[j] = Math.Exp(sc[j] - max);
                    for (var j = 0; j < T; j++)
                        P[prow + j] = j <= i ? (float)(sc[j] / sum) : 0f;
                    for (var d = 0; d < HS; d++)
                    {
                        double acc = 0;
                        for (var j = 0; j <= i; j++)
                            acc += (double)P[prow + j] * V[(b * T + j) * kw + kh * HS + d];
                        O[(b * T + i) * qw + h * HS + d] = (float)acc;
                    }
                }
            }
    }

    public void Backward(in AttentionShape s, Tensor dCtx, Tensor q, Tensor k, Tensor v, Tensor ctx, Tensor probs, Tensor dProbs,
        Tensor dQ, Tensor dK, Tensor dV)
    {
        Span<float> DO = S(dCtx), Q = S(q), K = S(k), V = S(v), P = S(probs), DQ = S(dQ), DK = S(dK), DV = S(dV);
        int T = s.T, HS = s.HS, qw = s.NH * HS, kw = s.KVH * HS;
        DQ.Clear();
        DK.Clear();
        DV.Clear();
        for (var b = 0; b < s.B; b++)
            for (var h = 0; h < s.NH; h++)
            {
                var kh = h / s.Rep;
                for (var i = 0; i < T; i++)
                {
                    var prow = ((b * s.NH + h) * T + i) * T;
                    var dp = new double[i + 1];
                    double dot = 0;
                    for (var j = 0; j <= i; j++)
                    {
                        for (var d = 0; d < HS; d++)
                        {
                            dp[j] += (double)DO[(b * T + i) * qw + h * HS + d] * V[(b * T + j) * kw + kh * HS + d];
                            DV[(b * T + j) * kw + kh * HS + d] += P[prow + j] * DO[(b * T + i) * qw + h * HS + d];
                        }
                        dot += dp[j] * P[prow + j];
                    }
                    for (var j = 0; j <= i; j++)
                    {
                        var ds = P[prow + j] * (dp[j] - dot) * s.Scale;
                        for (var d = 0; d < HS; d++)
                        {
                            DQ[(b * T + i) * qw + h * HS + d] += (float)(ds * K[(b * T + j) * kw + kh * HS + d]);
                            DK[(b * T + j) * kw + kh * HS + d] += (float)(ds * Q[(b * T + i) * qw + h * HS + d]);
                        }
                    }
                }
            }
    }

    public void CausalSoftmaxForward(Tensor scores, float scale) => throw new NotSupportedException("not used by the layers");

    public void CausalSoftmaxBackward(Tensor probs, Tensor dProbs, float scale) => throw new NotSupportedException("not used by the layers");

    public void SwiGluForward(Tensor upGate, Tensor s)
    {
        Span<float> U = S(upGate), O = S(s);
        var f = s.Shape.Last;
        for (var r = 0; r < O.Length / f; r++)
            for (var i = 0; i < f; i++)
            {
                double up = U[r * 2 * f + i], g = U[r * 2 * f + f + i];
                O[r * f + i] = (float)(up * g / (1 + Math.Exp(-g)));
            }
    }

    public void SwiGluBackward(Tensor dS, Tensor upGate, Tensor dUpGate)
    {
        Span<float> D = S(dS), U = S(upGate), DU = S(dUpGate);
        var f = dS.Shape.Last;
        for (var r = 0; r < D.Length / f; r++)
            for (var i = 0; i < f; i++)
            {
                double up = U[r * 2 * f + i], g = U[r * 2 * f + f + i], sig = 1 / (1 + Math.Exp(-g)), d = D[r * f + i];
                DU[r * 2 * f + i] = (float)(d * g * sig);
                DU[r * 2 * f + f + i] = (float)(d * up * sig * (1 + g * (1 - sig)));
            }
    }

    public void ConcatLast(Tensor a, Tensor b, Tensor y)
    {
        Span<float> A = S(a), B = S(b), Y = S(y);
        int na = a.Shape.Last, nb = b.Shape.Last;
        for (var r = 0; r < A.Length / na; r++)
        {
            A.Slice(r * na, na).CopyTo(Y.Slice(r * (na + nb), na));
            B.Slice(r * nb, nb).CopyTo(Y.Slice(r * (na + nb) + na, nb));
        }
    }

    public void SplitLast(Tensor y, Tensor a, Tensor b)
    {
        Span<float> A = S(a), B = S(b), Y = S(y);
        int na = a.Shape.Last, nb = b.Shape.Last;
        for (var r = 0; r < A.Length / na; r++)
        {
            Y.Slice(r * (na + nb), na).CopyTo(A.Slice(r * na, na));
            Y.Slice(r * (na + nb) + na, nb).CopyTo(B.Slice(r * nb, nb));
        }
    }

    public void Forward(Tensor tokens, Tensor table, Tensor y)
    {
        Span<float> X = S(tokens), E = S(table), Y = S(y);
        var c = table.Shape.Last;
        for (var i = 0; i < X.Length; i++)
            E.Slice((int)X[i] * c, c).CopyTo(Y.Slice(i * c, c));
    }

    public void Backward(Tensor tokens, Tensor dY, Tensor dTable)
    {
        Span<float> X = S(tokens), D = S(dY), DE = S(dTable);
        var c = dTable.Shape.Last;
        for (var i = 0; i < X.Length; i++)
            for (var j = 0; j < c; j++)
                DE[(int)X[i] * c + j] += D[i * c + j];
    }

    public void CrossEntropy(Tensor logits, Tensor targets, Tensor losses, Tensor loss, Tensor dLogits, float gradScale)
    {
        Span<float> Lg = S(logits), Tg = S(targets), Ls = S(losses), L = S(loss), D = S(dLogits);
        var v = logits.Shape.Last;
        double total = 0;
        for (var r = 0; r < Tg.Length; r++)
        {
            var row = Lg.Slice(r * v, v);
            double max = double.NegativeInfinity, sum = 0;
            foreach (var z in row)
                max = Math.Max(max, z);
            foreach (var z in row)
                sum += Math.Exp(z - max);
            var target = (int)Tg[r];
            var l = Math.Log(sum) + max - row[target];
            Ls[r] = (float)l;
            total += l;
            var drow = D.Slice(r * v, v);
            for (var j = 0; j < v; j++)
                drow[j] = (float)((Math.Exp(row[j] - max) / sum - (j == target ? 1 : 0)) * gradScale);
        }
        L[0] = (float)(total / Tg.Length);
    }

    public void AdamW(in AdamWStep st, Tensor param, Tensor grad, Tensor m, Tensor v, Tensor decayMask, Tensor gradSumSquares)
    {
        Span<float> P = S(param), G = S(grad), M = S(m), V = S(v), Mask = S(decayMask), Gs = S(gradSumSquares);
        var scale = st.GradClip > 0 ? Math.Min(1.0, st.GradClip / (Math.Sqrt(Gs[0]) + 1e-6)) : 1.0;
        for (var i = 0; i < P.Length; i++)
        {
            var g = G[i] * scale;
            M[i] = (float)(st.Beta1 * M[i] + (1 - st.Beta1) * g);
            V[i] = (float)(st.Beta2 * V[i] + (1 - st.Beta2) * g * g);
            double p = P[i] * (1 - st.Lr * st.WeightDecay * Mask[i]);
            P[i] = (float)(p - st.Lr * (M[i] / st.BiasCorrection1) / (Math.Sqrt(V[i] / st.BiasCorrection2) + st.Eps));
        }
    }
}
