// The managed fused attention (GQA, causal) against a float64 reference: forward probs and ctx, backward
// dQ, dK, dV (the reference backward itself checked by central finite differences of loss = Σ ctx·dCtx),
// the standalone causal softmax pair, determinism, one launch per call, and a cross-check on ilgpu-cpu.
using NUnit.Framework;
using SddIlgpu.Tensors.Ops;
using SddIlgpu.Tests.Support;
using static SddIlgpu.Tests.Tensors.ManagedTestKit;

namespace SddIlgpu.Tests.Tensors;

public sealed class ManagedAttentionTests
{
    static int Row(AttentionShape s, int b, int t, int head, int heads) => ((b * s.T + t) * heads + head) * s.HS;

    static (double[] Probs, double[] Ctx) Forward(AttentionShape s, double[] q, double[] k, double[] v)
    {
        double[] probs = new double[s.B * s.NH * s.T * s.T], ctx = new double[q.Length];
        var scale = 1 / Math.Sqrt(s.HS);
        for (var b = 0; b < s.B; b++)
            for (var h = 0; h < s.NH; h++)
                for (var t = 0; t < s.T; t++)
                {
                    var row = new double[t + 1];
                    for (var j = 0; j <= t; j++)
                        for (var d = 0; d < s.HS; d++)
                            row[j] += q[Row(s, b, t, h, s.NH) + d] * k[Row(s, b, j, h / s.Rep, s.KVH) + d] * scale;
                    var max = row.Max();
                    var sum = row.Sum(x => Math.Exp(x - max));
                    for (var j = 0; j <= t; j++)
                    {
                        var p = probs[((b * s.NH + h) * s.T + t) * s.T + j] = Math.Exp(row[j] - max) / sum;
                        for (var d = 0; d < s.HS; d++)
                            ctx[Row(s, b, t, h, s.NH) + d] += p * v[Row(s, b, j, h / s.Rep, s.KVH) + d];
                    }
                }
        return (probs, ctx);
    }

    static (double[] DQ, double[] DK, double[] DV) Backward(AttentionShape s, double[] q, double[] k, double[] v, double[] dCtx)
    {
        var (probs, _) = Forward(s, q, k, v);
        double[] dQ = new double[q.Length], dK = new double[k.Length], dV = new double[v.Length];
        var scale = 1 / Math.Sqrt(s.HS);
        for (var b = 0; b < s.B; b++)
            for (var h = 0; h < s.NH; h++)
                for (var t = 0; t < s.T; t++)
                {
                    int g = h / s.Rep, qt = Row(s, b, t, h, s.NH);
                    var dP = new double[t + 1];
                    double dot = 0;
                    for (var j = 0; j <= t; j++)
                    {
                        var p = probs[((b * s.NH + h) * s.T + t) * s.T + j];
                        for (var d = 0; d < s.HS; d++)
                        {
                            dP[j] += dCtx[qt + d] * v[Row(s, b, j, g, s.KVH) + d];
                            dV[Row(s, b, j, g, s.KVH) + d] += p * dCtx[qt + d];
                        }
                        dot += dP[j] * p;
                    }
                    for (var j = 0; j <= t; j++)
                    {
                        var dS = probs[((b * s.NH + h) * s.T + t) * s.T + j] * (dP[j] - dot) * scale;
                        for (var d = 0; d < s.HS; d++)
                        {
                            dQ[qt + d] += dS * k[Row(s, b, j, g, s.KVH) + d];
                            dK[Row(s, b, j, g, s.KVH) + d] += dS * q[qt + d];
                        }
                    }
                }
        return (dQ, dK, dV);
    }

    [Test]
    public void ReferenceBackwardMatchesFiniteDifferences()
    {
        var s = new AttentionShape(1, 4, 4, 2, 3);
        double[] q = ToDouble(Check.Random(s.T * s.NH * s.HS, 1)), k = ToDouble(Check.Random(s.T * s.KVH * s.HS, 2)),
            v = ToDouble(Check.Random(s.T * s.KVH * s.HS, 3)), dCtx = ToDouble(Check.Random(q.Length, 4));
        var (dQ, dK, dV) = Backward(s, q, k, v, dCtx);
        double Loss() => Forward(s, q, k, v).Ctx.Select((c, i) => c * dCtx[i]).Sum();
        foreach (var (x, grad, name) in new[] { (q, dQ, "dQ"), (k, dK, "dK"), (v, dV, "dV") })
        {
            var fd = new double[x.Length];
            for (var i = 0; i < x.Length; i++)
            {
                var keep = x[i];
                x[i] = keep + 1e-6;
                var up = Loss();
                x[i] = keep - 1e-6;
                fd[i] = (up - Loss()) / 2e-6;
                x[i] = keep;
            }
            Check.Close(grad.Select(g => (float)g).ToArray(), fd, 1e-6, 1e-4, $"reference {name} vs finite differences");
        }
    }

    [TestCase(1, 1, 1, 1, 1)]
    [TestCase(2, 4, 2, 7, 8)]
    [TestCase(1, 3, 1, 33, 5)]
    [TestCase(1, 2, 2, 65, 16)]
    public void ForwardAndBackwardMatchFloat64(int B, int NH, int KVH, int T, int HS)
    {
        var s = new AttentionShape(B, T, NH, KVH, HS);
        int nq = B * T * NH * HS, nkv = B * T * KVH * HS, np = B * NH * T * T;
        float[] q = Check.Random(nq, 5), k = Check.Random(nkv, 6), v = Check.Random(nkv, 7), dCtx = Check.Random(nq, 8);
        var (probs, ctx) = Forward(s, ToDouble(q), ToDouble(k), ToDouble(v));
        var (dQ, dK, dV) = Backward(s, ToDouble(q), ToDouble(k), ToDouble(v), ToDouble(dCtx));
        var nan = Enumerable.Repeat(float.NaN, nkv).ToArray(); // overwritten, never read
        var got = Run(Cpu, [q, k, v, new float[np], new float[nq], dCtx, new float[np], new float[nq], nan, nan], t =>
        {
            Cpu.Ops.Attention.Forward(s, t[0], t[1], t[2], t[3], t[4]);
            Cpu.Ops.Attention.Backward(s, t[5], t[0], t[1], t[2], t[3], t[6], t[7], t[8], t[9]);
        });
        Check.Close(got[3], probs, 1e-6, 1e-4, "probs");
        Check.Close(got[4], ctx, 1e-6, 1e-4, "ctx");
        Check.Close(got[7], dQ, 1e-5, 1e-4, "dQ");
        Check.Close(got[8], dK, 1e-5, 1e-4, "dK");
        Check.Close(got[9], dV, 1e-5, 1e-4, "dV");
    }

    [TestCase(3, 7)]
    [TestCase(2, 33)]
    public void CausalSoftmaxPairMatchesFloat64(int Z, int T)
    {
        const float Scale = 0.3f;
        float[] scores = Check.Random(Z * T * T, 9, 3f), dP = Check.Random(Z * T * T, 10);
        double[] p = new double[scores.Length], dS = new double[scores.Length];
        for (var r = 0; r < Z * T; r++)
        {
            int t = r % T;
            var max = Enumerable.Range(0, t + 1).Max(j => Scale * (double)scores[r * T + j]);
            var sum = Enumerable.Range(0, t + 1).Sum(j => Math.Exp(Scale * (double)scores[r * T + j] - max));
            for (var j = 0; j <= t; j++)
                p[r * T + j] = Math.Exp(Scale * (double)scores[r * T + j] - max) / sum;
            var dot = Enumerable.Range(0, t + 1).Sum(j => p[r * T + j] * dP[r * T + j]);
            for (var j = 0; j <= t; j++)
                dS[r * T + j] = Scale * p[r * T + j] * (dP[r * T + j] - dot);
        }
        var got = Run(Cpu, [scores, dP], t =>
        {
            Cpu.Ops.Attention.CausalSoftmaxForward(t[0].Reshape((Z, T, T)), Scale);
            Cpu.Ops.Attention.CausalSoftmaxBackward(t[0].Reshape((Z, T, T)), t[1].Reshape((Z, T, T)), Scale);
        });
        Check.Close(got[0], p, 1e-6, 1e-5, "causal softmax");
        Check.Close(got[1], dS, 1e-6, 1e-5, "causal softmax backward");
    }

    static float[][] Inputs(AttentionShape s)
    {
        int nq = s.B * s.T * s.NH * s.HS, nkv = s.B * s.T * s.KVH * s.HS, np = s.B * s.NH * s.T * s.T;
        return [Check.Random(nq, 11), Check.Random(nkv, 12), Check.Random(nkv, 13), new float[np], new float[nq],
            Check.Random(nq, 14), new float[np], new float[nq], new float[nkv], new float[nkv]];
    }

    [Test]
    public void RepeatsBitForBitAndCountsOneLaunchEach()
    {
        var s = new AttentionShape(2, 33, 4, 2, 8);
        Deterministic(Inputs(s), t =>
        {
            Assert.That(Launches(Cpu, () => Cpu.Ops.Attention.Forward(s, t[0], t[1], t[2], t[3], t[4])), Is.EqualTo(1));
            Assert.That(Launches(Cpu, () => Cpu.Ops.Attention.Backward(s, t[5], t[0], t[1], t[2], t[3], t[6], t[7], t[8], t[9])), Is.EqualTo(1));
        }, "attention");
    }

    [Test]
    public void MatchesIlgpuKernel()
    {
        var s = new AttentionShape(1, 7, 4, 2, 8);
        CrossCheck(Inputs(s), (d, t) =>
        {
            d.Ops.Attention.Forward(s, t[0], t[1], t[2], t[3], t[4]);
            d.Ops.Attention.Backward(s, t[5], t[0], t[1], t[2], t[3], t[6], t[7], t[8], t[9]);
        }, [3, 4, 7, 8, 9], 1e-5, 1e-4, "attention");
    }
}
