// The managed attentions (GQA, causal) against a float64 reference: the FlashAttention-2 ManagedAttention (saved
// log-sum-exp) and the materialised MaterializedAttention (saved probs), forward ctx, backward dQ, dK, dV (the
// reference backward itself checked by central finite differences of loss = Σ ctx·dCtx), at block-ragged T,
// T = 1, GQA and HS not a multiple of 8; fused against materialised; the standalone causal softmax pair;
// determinism (twice, and across worker partitions); one launch per call; a cross-check on ilgpu-cpu; and the
// cpu model's activation arena without the (B, NH, T, T) buffers or the normalised [up | gate]; the fused path's masked
// row helpers.
using NUnit.Framework;
using SddIlgpu.Layers;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Managed;
using SddIlgpu.Tensors.Ops;
using SddIlgpu.Tests.Support;
using static SddIlgpu.Tests.Tensors.ManagedTestKit;

namespace SddIlgpu.Tests.Tensors;

public sealed class ManagedAttentionTests
{
    static int Row(AttentionShape s, int b, int t, int head, int heads) => ((b * s.T + t) * heads + head) * s.HS;

    static (double[] Probs, double[] Ctx) Forward(AttentionShape s, double[] q, double[] k, double[] v)
    {
        var (probs, ctx, _) = ForwardWithLse(s, q, k, v);
        return (probs, ctx);
    }

    /// <summary>Also the log-sum-exp L (B, NH, T) of each row's scaled scores, what FlashAttention-2 saves.</summary>
    static (double[] Probs, double[] Ctx, double[] Lse) ForwardWithLse(AttentionShape s, double[] q, double[] k, double[] v)
    {
        double[] probs = new double[s.B * s.NH * s.T * s.T], ctx = new double[q.Length], lse = new double[s.B * s.NH * s.T];
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
                    lse[(b * s.NH + h) * s.T + t] = max + Math.Log(sum);
                    for (var j = 0; j <= t; j++)
                    {
                        var p = probs[((b * s.NH + h) * s.T + t) * s.T + j] = Math.Exp(row[j] - max) / sum;
                        for (var d = 0; d < s.HS; d++)
                            ctx[Row(s, b, t, h, s.NH) + d] += p * v[Row(s, b, j, h / s.Rep, s.KVH) + d];
                    }
                }
        return (probs, ctx, lse);
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

    /// <summary>
    /// Runs forward then backward of <paramref name="att"/> on cpu. Returned arrays: 0 q, 1 k, 2 v, 3 saved, 4 ctx,
    /// 5 dCtx, 6 scratch, 7 dQ, 8 dK, 9 dV. Gradients and scratch start as NaN: they must be overwritten.
    /// </summary>
    static float[][] RunBoth(IAttentionOps att, AttentionShape s, int seed = 5)
    {
        int nq = s.B * s.T * s.NH * s.HS, nkv = s.B * s.T * s.KVH * s.HS;
        float[] NaNs(long n) => Enumerable.Repeat(float.NaN, checked((int)n)).ToArray();
        return Run(Cpu, [Check.Random(nq, seed), Check.Random(nkv, seed + 1, 1.5f), Check.Random(nkv, seed + 2), new float[att.SavedLength(s)],
            new float[nq], Check.Random(nq, seed + 3), NaNs(att.ScratchLength(s)), NaNs(nq), NaNs(nkv), NaNs(nkv)], t =>
        {
            att.Forward(s, t[0], t[1], t[2], t[3], t[4]);
            att.Backward(s, t[5], t[0], t[1], t[2], t[4], t[3], t[6], t[7], t[8], t[9]);
        });
    }

    static IAttentionOps Fused => Cpu.Ops.Attention;

    [Test]
    public void TheCpuDeviceUsesTheFusedAttention()
    {
        Assert.That(Cpu.Ops.Attention, Is.InstanceOf<ManagedAttention>());
        var s = new AttentionShape(4, 256, 6, 6, 64);
        Assert.That(Cpu.Ops.Attention.SavedLength(s), Is.EqualTo(4L * 6 * 256), "saved: L (B, NH, T)");
        Assert.That(Cpu.Ops.Attention.ScratchLength(s), Is.EqualTo(4L * 6 * 256), "scratch: D (B, NH, T)");
        Assert.That(new MaterializedAttention(Cpu).SavedLength(s), Is.EqualTo(4L * 6 * 256 * 256), "materialised: P (B, NH, T, T)");
    }

    /// <summary>
    /// Both managed attentions against float64, at shapes that cross and miss the 64-row query blocks and the 256-key
    /// blocks of the fused online softmax (T = 300, 520: two and three key blocks); the fused one on the AVX2 6×16
    /// micro-kernel too (its 6-row tiles do not divide the query block).
    /// </summary>
    [TestCase(1, 1, 1, 1, 1)]
    [TestCase(2, 4, 2, 7, 8)]
    [TestCase(1, 3, 1, 33, 5)]
    [TestCase(1, 2, 2, 65, 16)]
    [TestCase(1, 4, 2, 130, 12)]
    [TestCase(2, 4, 1, 64, 7)]
    [TestCase(1, 2, 1, 200, 64)]
    [TestCase(1, 1, 1, 129, 20)]
    [TestCase(1, 2, 1, 300, 8)]
    [TestCase(1, 1, 1, 520, 3)]
    public void ForwardAndBackwardMatchFloat64(int B, int NH, int KVH, int T, int HS)
    {
        var s = new AttentionShape(B, T, NH, KVH, HS);
        foreach (var (att, which) in new (IAttentionOps, string)[]
                 {
                     (Fused, "fused"), (new ManagedAttention(Cpu, GemmMicroKernel.Vector256Kernel()), "fused 6x16"),
                     (new MaterializedAttention(Cpu), "materialised"),
                 })
        {
            var fused = att is ManagedAttention;
            var got = RunBoth(att, s);
            var (probs, ctx, lse) = ForwardWithLse(s, ToDouble(got[0]), ToDouble(got[1]), ToDouble(got[2]));
            var (dQ, dK, dV) = Backward(s, ToDouble(got[0]), ToDouble(got[1]), ToDouble(got[2]), ToDouble(got[5]));
            Check.Close(got[3], fused ? lse : probs, 1e-6, 1e-4, $"{which} saved {(fused ? "log-sum-exp" : "probs")}");
            Check.Close(got[4], ctx, 1e-6, 1e-4, $"{which} ctx");
            Check.Close(got[7], dQ, 1e-5, 1e-4, $"{which} dQ");
            Check.Close(got[8], dK, 1e-5, 1e-4, $"{which} dK");
            Check.Close(got[9], dV, 1e-5, 1e-4, $"{which} dV");
        }
    }

    /// <summary>The fused attention's gradients against central finite differences of the float64 loss Σ ctx·dCtx.</summary>
    [TestCase(1, 4, 2, 5, 3)]
    [TestCase(1, 2, 1, 3, 9)]
    public void FusedBackwardMatchesFiniteDifferences(int B, int NH, int KVH, int T, int HS)
    {
        var s = new AttentionShape(B, T, NH, KVH, HS);
        var got = RunBoth(Fused, s, seed: 21);
        double[] q = ToDouble(got[0]), k = ToDouble(got[1]), v = ToDouble(got[2]), dCtx = ToDouble(got[5]);
        double Loss() => Forward(s, q, k, v).Ctx.Select((c, i) => c * dCtx[i]).Sum();
        foreach (var (x, grad, name) in new[] { (q, got[7], "dQ"), (k, got[8], "dK"), (v, got[9], "dV") })
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
            Check.Close(grad, fd, 1e-5, 1e-4, $"fused {name} vs finite differences");
        }
    }

    /// <summary>Fused against materialised on the same inputs, at baby-gpt's head size and a GQA shape.</summary>
    [TestCase(1, 2, 2, 256, 64)]
    [TestCase(2, 4, 2, 100, 24)]
    public void FusedMatchesMaterialised(int B, int NH, int KVH, int T, int HS)
    {
        var s = new AttentionShape(B, T, NH, KVH, HS);
        float[][] fused = RunBoth(Fused, s), old = RunBoth(new MaterializedAttention(Cpu), s);
        foreach (var (i, name) in new[] { (4, "ctx"), (7, "dQ"), (8, "dK"), (9, "dV") })
            Check.Close(fused[i], old[i], 1e-5, 1e-4, $"fused vs materialised {name}");
    }

    /// <summary>The fused attention repeats bit for bit, and its results do not depend on how many chunks share the work.</summary>
    [TestCase(2, 4, 2, 130, 12)]
    [TestCase(1, 2, 1, 300, 8)]
    [TestCase(3, 2, 1, 64, 16)]
    public void FusedIsBitIdenticalTwiceAndAcrossPartitions(int B, int NH, int KVH, int T, int HS)
    {
        var s = new AttentionShape(B, T, NH, KVH, HS);
        var first = RunBoth(Fused, s);
        var again = RunBoth(Fused, s);
        foreach (var chunks in new[] { 1, 2, 3 })
        {
            var split = RunBoth(new ManagedAttention(Cpu) { Chunks = chunks }, s);
            foreach (var (i, name) in new[] { (3, "L"), (4, "ctx"), (6, "D"), (7, "dQ"), (8, "dK"), (9, "dV") })
            {
                Check.BitIdentical(again[i], first[i], $"{name} twice");
                Check.BitIdentical(split[i], first[i], $"{name} with {chunks} chunk(s)");
            }
        }
    }

    [Test]
    public void FusedShapeErrorsAreClear()
    {
        var s = new AttentionShape(1, 4, 2, 1, 3);
        var e = Assert.Throws<ArgumentException>(() => Run(Cpu, [new float[24], new float[12], new float[12], new float[8 * 4], new float[24]],
            t => Fused.Forward(s, t[0], t[1], t[2], t[3], t[4])))!;
        Assert.That(e.Message, Does.Contain("saved log-sum-exp").And.Contain("8"));
        e = Assert.Throws<ArgumentException>(() => Run(Cpu, [new float[24], new float[12], new float[12], new float[8], new float[24]],
            t => Fused.Forward(s with { KVH = 3 }, t[0], t[1], t[2], t[3], t[4])))!;
        Assert.That(e.Message, Does.Contain("KVH must divide NH"));
    }

    /// <summary>
    /// The cpu model's activation arena holds no (B, NH, T, T) buffer: per layer the saved state is L (B, NH, T)
    /// instead of P, and the shared scratch is D (B, NH, T) instead of dP; the model allocates exactly that.
    /// </summary>
    [Test]
    public void TheCpuModelAllocatesNoTxTAttentionBuffers()
    {
        var c = new ModelConfig(54, 32, 2, 4, 2, 48, 70, Residual.Pre, LinearKind.SddCode);
        const int Batch = 3;
        long tt = (long)Batch * c.NHead * c.SeqLen * c.SeqLen, rows = (long)Batch * c.NHead * c.SeqLen;
        var fused = Model.ActivationLength(c, Batch, Cpu.Ops.Attention, fusedFfn: true);
        Assert.That(Model.ActivationLength(c, Batch, AttentionStorage.Materialized, fusedFfn: true) - fused, Is.EqualTo((c.NLayer + 1) * (tt - rows)));
        using var weights = new ModelWeights(Cpu, c);
        var before = Cpu.Counters.AllocatedBytes;
        using var model = new Model(weights, Batch);
        Assert.That(Cpu.Counters.AllocatedBytes - before, Is.EqualTo(4 * fused), "the model's arena is the fused length");
        var baby = ModelConfig.Preset("baby-gpt", 65, Residual.Pre, LinearKind.SddCode);
        Assert.That(Model.ActivationLength(baby, 4, AttentionStorage.Materialized) - Model.ActivationLength(baby, 4, Cpu.Ops.Attention),
            Is.EqualTo((baby.NLayer + 1) * (4L * 6 * 256 * 256 - 4L * 6 * 256)), "baby-gpt: 1,566,720 floats (5.98 MiB) fewer per layer, and as many in the shared scratch");
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

    static float[][] Inputs(AttentionShape s, IAttentionStorage storage)
    {
        int nq = s.B * s.T * s.NH * s.HS, nkv = s.B * s.T * s.KVH * s.HS;
        return [Check.Random(nq, 11), Check.Random(nkv, 12), Check.Random(nkv, 13), new float[storage.SavedLength(s)], new float[nq],
            Check.Random(nq, 14), new float[storage.ScratchLength(s)], new float[nq], new float[nkv], new float[nkv]];
    }

    [Test]
    public void RepeatsBitForBitAndCountsOneLaunchEach()
    {
        var s = new AttentionShape(2, 33, 4, 2, 8);
        Deterministic(Inputs(s, Fused), t =>
        {
            Assert.That(Launches(Cpu, () => Cpu.Ops.Attention.Forward(s, t[0], t[1], t[2], t[3], t[4])), Is.EqualTo(1));
            Assert.That(Launches(Cpu, () => Cpu.Ops.Attention.Backward(s, t[5], t[0], t[1], t[2], t[4], t[3], t[6], t[7], t[8], t[9])), Is.EqualTo(1));
        }, "attention");
    }

    /// <summary>The fused cpu attention against the ILGPU kernels (materialised) on ilgpu-cpu: ctx, dQ, dK, dV.</summary>
    [Test]
    public void MatchesIlgpuKernel()
    {
        var s = new AttentionShape(1, 70, 4, 2, 8);
        float[][] Both(Device d) => Run(d, Inputs(s, d.Ops.Attention), t =>
        {
            d.Ops.Attention.Forward(s, t[0], t[1], t[2], t[3], t[4]);
            d.Ops.Attention.Backward(s, t[5], t[0], t[1], t[2], t[4], t[3], t[6], t[7], t[8], t[9]);
        });
        float[][] managed = Both(Cpu), kernel = Both(Support.TestDevices.Get("ilgpu-cpu"));
        foreach (var (i, name) in new[] { (4, "ctx"), (7, "dQ"), (8, "dK"), (9, "dV") })
            Check.Close(managed[i], kernel[i], 1e-5, 1e-4, $"attention {name} (cpu vs ilgpu-cpu)");
    }

    /// <summary>
    /// With fused FFN ops (the cpu device) an sdd-code model stores no normalised [up | gate]: (B·T, 2F) floats fewer per
    /// layer than the unfused plan, and the model allocates exactly the fused length; plain and sdd-paper models, whose
    /// FFN the fused ops do not run, are unchanged. Training still matches the unfused ops (ManagedOpsTests, golden).
    /// </summary>
    [Test]
    public void TheCpuModelStoresNoNormalisedUpGate()
    {
        const int Batch = 2;
        foreach (var linear in new[] { LinearKind.SddCode, LinearKind.Plain, LinearKind.SddPaper })
        {
            var c = new ModelConfig(54, 32, 2, 4, 2, 48, 16, Residual.Post, linear);
            long saved = linear == LinearKind.SddCode ? c.NLayer * (long)Batch * c.SeqLen * 2 * c.FfnHidden : 0;
            var fused = Model.ActivationLength(c, Batch, Cpu.Ops.Attention, fusedFfn: true);
            Assert.That(Model.ActivationLength(c, Batch, Cpu.Ops.Attention) - fused, Is.EqualTo(saved), $"{linear}: floats saved");
            using var weights = new ModelWeights(Cpu, c);
            var before = Cpu.Counters.AllocatedBytes;
            using var model = new Model(weights, Batch);
            Assert.That(Cpu.Counters.AllocatedBytes - before, Is.EqualTo(4 * fused), $"{linear}: the model's arena is the fused length");
        }
        var baby = ModelConfig.Preset("baby-gpt", 65, Residual.Post, LinearKind.SddCode);
        Assert.That(4 * (Model.ActivationLength(baby, 64, Cpu.Ops.Attention) - Model.ActivationLength(baby, 64, Cpu.Ops.Attention, fusedFfn: true)),
            Is.EqualTo(768L << 20), "baby-gpt at B = 64: 768 MiB");
    }

    /// <summary>
    /// The fused path's row helpers on causal rows of every length to 40 (whole blocks and every tail), with NaN and ±∞
    /// past the live part, as a skipped tile or a stale block leaves there: the max and the exp sum ignore those lanes,
    /// the live values match float64, [count, zeroTo) comes back zero, and nothing past the last 8-float block of
    /// zeroTo is written.
    /// </summary>
    [Test]
    public unsafe void RowHelpersMaskEverythingPastTheCausalCut()
    {
        const int ZeroTo = 37, Length = 48; // zeroTo rounds up to 40
        var rng = new Random(3);
        float[] garbage = [float.NaN, float.PositiveInfinity, float.NegativeInfinity, 1e30f];
        for (var count = 1; count <= ZeroTo; count++)
        {
            float[] row = new float[Length], dP = new float[Length];
            for (var j = 0; j < Length; j++)
            {
                row[j] = j < count ? (float)(rng.NextDouble() * 8 - 4) : garbage[j % garbage.Length];
                dP[j] = j < count ? (float)(rng.NextDouble() * 2 - 1) : garbage[(j + 1) % garbage.Length];
            }
            var live = row.Take(count).Select(x => (double)x).ToArray();
            var p = (float[])row.Clone();
            var dPIn = dP.Select(x => (double)x).ToArray();
            fixed (float* pr = row, pp = p, pd = dP)
            {
                var max = AttentionKernels.RowMax(pr, count);
                Assert.That(max, Is.EqualTo((float)live.Max()), $"max over {count}");
                var sum = AttentionKernels.ExpRow(pr, count, max, ZeroTo);
                var expSum = live.Sum(x => Math.Exp(x - max));
                Assert.That(sum, Is.EqualTo(expSum).Within(2e-6 * expSum), $"exp sum over {count}");
                const float Lse = 0.75f, D = 0.125f, Scale = 0.5f;
                AttentionKernels.SoftmaxBackwardRow(pp, pd, count, Lse, D, Scale, ZeroTo);
                for (var j = 0; j < Length; j++)
                {
                    string at = $"count {count}, j {j}";
                    if (j < count)
                    {
                        var e = Math.Exp(live[j] - max);
                        Assert.That(row[j], Is.EqualTo(e).Within(2e-6 * e + 1e-30), $"exp {at}");
                        var pe = Math.Exp(live[j] - Lse);
                        Assert.That(p[j], Is.EqualTo(pe).Within(2e-6 * pe), $"P {at}");
                    }
                    else if (j < 40)
                    {
                        Assert.That(BitConverter.SingleToInt32Bits(row[j]), Is.Zero, $"row zero {at}");
                        Assert.That(BitConverter.SingleToInt32Bits(p[j]), Is.Zero, $"P zero {at}");
                        Assert.That(BitConverter.SingleToInt32Bits(dP[j]), Is.Zero, $"dS zero {at}");
                    }
                    else
                    {
                        Assert.That(BitConverter.SingleToInt32Bits(row[j]), Is.EqualTo(BitConverter.SingleToInt32Bits(garbage[j % garbage.Length])), $"untouched {at}");
                    }
                }
            }
            for (var j = 0; j < count; j++)
            {
                var pe = Math.Exp(live[j] - 0.75);
                var expected = 0.5 * pe * (dPIn[j] - 0.125);
                Assert.That(dP[j], Is.EqualTo(expected).Within(1e-5 * Math.Abs(expected) + 1e-7), $"dS count {count}, j {j}");
            }
        }
    }
}

