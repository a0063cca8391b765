// The managed ops other than GEMM and attention against float64 references: RMS norm (with and without
// gain, dX aliasing dY, dGain accumulating), rope, SwiGLU, concat/split, embedding, cross-entropy, AdamW,
// elementwise, reductions and Philox draws; determinism, one launch per call, cross-checks on ilgpu-cpu.
using NUnit.Framework;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Managed;
using SddIlgpu.Tensors.Ops;
using SddIlgpu.Tensors.Random;
using SddIlgpu.Tests.Support;
using static SddIlgpu.Tests.Tensors.ManagedTestKit;

namespace SddIlgpu.Tests.Tensors;

public sealed class ManagedOpsTests
{
    const float Eps = 1e-5f;

    /// <summary>
    /// The managed exp (Cephes expf) against the float64 exp: within 1 ULP over [−87.3, 88.7] on a dense grid and at
    /// the softmax and sigmoid inputs that matter most (0, small negatives), and the documented ends: NaN stays NaN,
    /// below −87.34 gives 0, −∞ gives 0, above 88.72 +∞.
    /// </summary>
    [Test]
    public void ExpIsWithinOneUlpOfFloat64()
    {
        var worst = 0.0;
        var at = 0f;
        var xs = Enumerable.Range(0, 400_001).Select(i => -87.3f + i * (176f / 400_000))
            .Concat([0f, -0f, 1e-8f, -1e-8f, -0.5f, -1f, -10f, 1f, 0.34657359f, -0.34657359f, 88.3f, 88.5f, 88.72f]);
        foreach (var x in xs)
        {
            var got = ManagedSimd.Exp(x);
            var want = Math.Exp(x);
            var ulp = Math.Abs(got - want) / (MathF.BitIncrement((float)want) - (float)want);
            if (ulp > worst)
                (worst, at) = (ulp, x);
        }
        Assert.That(worst, Is.LessThanOrEqualTo(1.0), $"worst {worst:F2} ULP at x = {at:R}");
        Assert.That(ManagedSimd.Exp(0f), Is.EqualTo(1f), "exp(0) is exactly 1");
        Assert.That(float.IsNaN(ManagedSimd.Exp(float.NaN)), "NaN stays NaN");
        Assert.That(ManagedSimd.Exp(-87.5f), Is.EqualTo(0f), "below the smallest normal: 0");
        Assert.That(ManagedSimd.Exp(float.NegativeInfinity), Is.EqualTo(0f));
        Assert.That(ManagedSimd.Exp(88.73f), Is.EqualTo(float.PositiveInfinity));
        Assert.That(ManagedSimd.Exp(float.PositiveInfinity), Is.EqualTo(float.PositiveInfinity));
    }

    /// <summary>
    /// The 16-lane exp, sigmoid and shifted-exp sum (AVX-512) give the 8-lane version's bits on every element, whatever
    /// the length (16-lane body, 8-lane rest, padded tail): training bits do not depend on the vector width the
    /// hardware offers. The references run each 8-element block through the 8-lane exp and add the blocks in order.
    /// </summary>
    [TestCase(1)]
    [TestCase(16)]
    [TestCase(27)]
    [TestCase(256)]
    [TestCase(1031)]
    public void WideExpPathsMatchTheEightLaneExpBitForBit(int n)
    {
        if (!System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated)
            Assert.Ignore("no AVX-512 here: only the 8-lane path runs");
        var rng = new System.Random(n);
        var x = Enumerable.Range(0, n).Select(i => i % 97 == 5 ? -90f : (float)(rng.NextDouble() * 40 - 30)).ToArray();
        if (n > 3)
            (x[1], x[2], x[3]) = (float.NaN, 0f, 89.5f);
        var lanes = Enumerable.Range(0, 400).Select(i => -88f + i * 0.44f).ToArray();
        var wide = new float[lanes.Length];
        for (var i = 0; i + 16 <= lanes.Length; i += 16)
            System.Runtime.Intrinsics.Vector512.CopyTo(ManagedSimd.ExpVector(System.Runtime.Intrinsics.Vector512.Create<float>(lanes.AsSpan(i, 16))), wide.AsSpan(i, 16));
        for (var i = 0; i < lanes.Length; i++)
            Assert.That(BitConverter.SingleToInt32Bits(wide[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(ManagedSimd.Exp(lanes[i]))), $"exp lane {i} (x = {lanes[i]})");

        var sig = new float[n];
        ManagedSimd.Sigmoid(x, sig);
        var shift = 2.5f;
        var e = new float[n];
        ManagedSimd.ExpShifted(x, shift, e);
        for (var i = 0; i < n; i++)
        {
            Assert.That(BitConverter.SingleToInt32Bits(sig[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(1f / (1f + ManagedSimd.Exp(-x[i])))), $"sigmoid {i} (x = {x[i]})");
            Assert.That(BitConverter.SingleToInt32Bits(e[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(ManagedSimd.Exp(x[i] - shift))), $"exp(x - shift) {i}");
        }

        // The sum, on finite inputs of one scale (a NaN would hide any order, and terms that vanish beside the largest
        // would hide most): 8-lane blocks added in order, then the tail.
        var finite = x.Select(_ => (float)(rng.NextDouble() * 8 - 4)).ToArray();
        var sum = ManagedSimd.ExpShifted(finite, shift, e);
        var acc = System.Runtime.Intrinsics.Vector256<float>.Zero;
        var whole = n / 8 * 8;
        for (var i = 0; i < whole; i += 8)
            acc += ManagedSimd.ExpVector(System.Runtime.Intrinsics.Vector256.Create<float>(finite.AsSpan(i, 8)) - System.Runtime.Intrinsics.Vector256.Create(shift));
        var want = System.Runtime.Intrinsics.Vector256.Sum(acc);
        for (var i = whole; i < n; i++)
            want += ManagedSimd.Exp(finite[i] - shift);
        Assert.That(float.IsFinite(want), Is.True);
        Assert.That(BitConverter.SingleToInt32Bits(sum), Is.EqualTo(BitConverter.SingleToInt32Bits(want)), "the sum adds 8-lane blocks in order, then the tail");
    }

    static (double[] Y, double[] Rstd, double[] DX, double[] DGain) NormReference(float[] x, float[]? gain, float[] dY, float[] dGain0, int gs)
    {
        int groups = x.Length / gs;
        double[] y = new double[x.Length], rstd = new double[groups], dX = new double[x.Length], dGain = ToDouble(dGain0);
        for (var g = 0; g < groups; g++)
        {
            double ms = 0;
            for (var i = 0; i < gs; i++) ms += (double)x[g * gs + i] * x[g * gs + i];
            var r = rstd[g] = 1 / Math.Sqrt(ms / gs + Eps);
            double dot = 0;
            for (var i = 0; i < gs; i++)
            {
                double gi = gain?[i] ?? 1, xh = x[g * gs + i] * r;
                y[g * gs + i] = gi * xh;
                dot += gi * dY[g * gs + i] * xh;
                if (gain is not null) dGain[i] += dY[g * gs + i] * xh;
            }
            for (var i = 0; i < gs; i++)
                dX[g * gs + i] = r * ((gain?[i] ?? 1) * dY[g * gs + i] - x[g * gs + i] * r * dot / gs);
        }
        return (y, rstd, dX, dGain);
    }

    [TestCase(1, 1, true)]
    [TestCase(7, 7, false)]
    [TestCase(33, 65, true)]
    [TestCase(130, 33, true)] // several dGain chunks
    public void RmsNormForwardBackwardMatchFloat64(int rows, int gs, bool withGain)
    {
        float[] x = Check.Random(rows * gs, 1, 2f), gain = Check.Random(gs, 2), dY = Check.Random(rows * gs, 3), dGain = Check.Random(gs, 4);
        var reference = NormReference(x, withGain ? gain : null, dY, dGain, gs);
        var got = Run(Cpu, [x, gain, new float[x.Length], new float[rows], dY, dGain], t =>
        {
            Cpu.Ops.Norm.Forward(t[0], withGain ? t[1] : null, t[2], t[3], gs, Eps);
            Cpu.Ops.Norm.Backward(t[4], t[0], withGain ? t[1] : null, t[3], t[4], withGain ? t[5] : null, gs); // dX aliases dY
        });
        Check.Close(got[2], reference.Y, 1e-5, 1e-4, "norm y");
        Check.Close(got[3], reference.Rstd, 1e-5, 1e-4, "norm rstd");
        Check.Close(got[4], reference.DX, 1e-5, 1e-4, "norm dX");
        Check.Close(got[5], reference.DGain, 1e-5, 1e-4, "norm dGain (accumulated)");
    }

    /// <summary>
    /// The fused sdd-code FFN ops give the separate norm-then-SwiGLU and SwiGLU-then-norm results bit for bit: rows
    /// across two dGain chunks (130 = 2·64 + 2), F off the vector width and off the σ batch (37, 300), with and
    /// without a gain; dGain accumulates onto what it held. The forward without a stored upGate gives the same results.
    /// </summary>
    [TestCase(130, 37, true)]
    [TestCase(5, 300, true)]
    [TestCase(70, 8, false)]
    public void FusedFfnOpsMatchSeparateOpsBitForBit(int rows, int f, bool withGain)
    {
        float[] z = Check.Random(rows * 2 * f, 11, 2f), gain = Check.Random(2 * f, 12), dS = Check.Random(rows * f, 13), dGain = Check.Random(2 * f, 14);
        float[][] Inputs() => [z, gain, new float[z.Length], new float[rows], new float[rows * f], dS, new float[z.Length], dGain];
        var fused = Cpu.Ops.FusedFfn ?? throw new AssertionException("the cpu device has fused FFN ops");
        var one = Run(Cpu, Inputs(), t =>
        {
            var (zt, ug, dug) = (t[0].Reshape((rows, 2 * f)), t[2].Reshape((rows, 2 * f)), t[6].Reshape((rows, 2 * f)));
            fused.NormSwiGluForward(zt, withGain ? t[1] : null, ug, t[3], t[4].Reshape((rows, f)), Eps);
            fused.SwiGluNormBackward(t[5].Reshape((rows, f)), zt, withGain ? t[1] : null, t[3], dug, withGain ? t[7] : null);
        });
        var two = Run(Cpu, Inputs(), t =>
        {
            var (zt, ug, dug) = (t[0].Reshape((rows, 2 * f)), t[2].Reshape((rows, 2 * f)), t[6].Reshape((rows, 2 * f)));
            Cpu.Ops.Norm.Forward(zt, withGain ? t[1] : null, ug, t[3], 2 * f, Eps);
            Cpu.Ops.Activation.SwiGluForward(ug, t[4].Reshape((rows, f)));
            Cpu.Ops.Activation.SwiGluBackward(t[5].Reshape((rows, f)), ug, dug);
            Cpu.Ops.Norm.Backward(dug, zt, withGain ? t[1] : null, t[3], dug, withGain ? t[7] : null, 2 * f);
        });
        foreach (var (i, name) in new[] { (2, "upGate"), (3, "rstd"), (4, "s"), (6, "dUpGate"), (7, "dGain") })
            Check.BitIdentical(one[i], two[i], $"fused vs separate {name}");
        // Without a stored upGate (what the layer does): the same rstd, s, dUpGate and dGain, and nothing written there.
        var unstored = Run(Cpu, Inputs(), t =>
        {
            var (zt, dug) = (t[0].Reshape((rows, 2 * f)), t[6].Reshape((rows, 2 * f)));
            fused.NormSwiGluForward(zt, withGain ? t[1] : null, null, t[3], t[4].Reshape((rows, f)), Eps);
            fused.SwiGluNormBackward(t[5].Reshape((rows, f)), zt, withGain ? t[1] : null, t[3], dug, withGain ? t[7] : null);
        });
        foreach (var (i, name) in new[] { (3, "rstd"), (4, "s"), (6, "dUpGate"), (7, "dGain") })
            Check.BitIdentical(unstored[i], one[i], $"upGate not stored: {name}");
        Assert.That(unstored[2], Is.All.EqualTo(0f), "upGate's buffer is not written");
        if (withGain)
            Assert.That(one[7], Is.Not.EqualTo(dGain), "dGain accumulates the norm's gain gradient");
        else
            Check.BitIdentical(one[7], dGain, "dGain untouched without a gain");
    }

    [TestCase(2, 7, 3, 8)]
    [TestCase(1, 33, 1, 2)]
    [TestCase(1, 5, 2, 64)] // half 32: four 8-lane vectors per head
    [TestCase(2, 3, 3, 20)] // half 10: one vector and a scalar tail of two
    public void RopeForwardAndBackwardMatchFloat64(int B, int T, int H, int HS)
    {
        var table = RopeTable.Build(T, HS, 10000);
        float[] x = Check.Random(B * T * H * HS, 5);
        double[] expectY = new double[x.Length], expectBack = new double[x.Length];
        int half = HS / 2;
        for (var r = 0; r < B * T; r++)
            for (var h = 0; h < H; h++)
                for (var i = 0; i < half; i++)
                {
                    int t = r % T, at = (r * H + h) * HS + i;
                    double c = table[(t * half + i) * 2], s = table[(t * half + i) * 2 + 1], x1 = x[at], x2 = x[at + half];
                    expectY[at] = x1 * c - x2 * s;
                    expectY[at + half] = x2 * c + x1 * s;
                    expectBack[at] = x1 * c + x2 * s;
                    expectBack[at + half] = x2 * c - x1 * s;
                }
        var got = Run(Cpu, [x, new float[x.Length], table, (float[])x.Clone()], t =>
        {
            Shape shape = (B, T, H * HS);
            Cpu.Ops.Rope.Forward(t[0].Reshape(shape), t[1].Reshape(shape), t[2], HS);
            Cpu.Ops.Rope.Backward(t[3].Reshape(shape), t[3].Reshape(shape), t[2], HS); // in place
        });
        Check.Close(got[1], expectY, 1e-6, 1e-5, "rope forward");
        Check.Close(got[3], expectBack, 1e-6, 1e-5, "rope backward");
    }

    [TestCase(1, 1)]
    [TestCase(7, 33)]
    [TestCase(3, 65)]
    public void SwiGluAndConcatMatchFloat64(int rows, int f)
    {
        float[] ug = Check.Random(rows * 2 * f, 6, 4f), dS = Check.Random(rows * f, 7);
        double[] s = new double[rows * f], dUg = new double[rows * 2 * f];
        for (var r = 0; r < rows; r++)
            for (var i = 0; i < f; i++)
            {
                double up = ug[r * 2 * f + i], g = ug[r * 2 * f + f + i], sig = 1 / (1 + Math.Exp(-g)), d = dS[r * f + i];
                s[r * f + i] = up * g * sig;
                dUg[r * 2 * f + i] = d * g * sig;
                dUg[r * 2 * f + f + i] = d * up * sig * (1 + g * (1 - sig));
            }
        var got = Run(Cpu, [ug, new float[rows * f], dS, new float[ug.Length], new float[rows * f], new float[rows * f], new float[ug.Length]], t =>
        {
            Cpu.Ops.Activation.SwiGluForward(t[0].Reshape((rows, 2 * f)), t[1].Reshape((rows, f)));
            Cpu.Ops.Activation.SwiGluBackward(t[2].Reshape((rows, f)), t[0].Reshape((rows, 2 * f)), t[3].Reshape((rows, 2 * f)));
            Cpu.Ops.Activation.SplitLast(t[0].Reshape((rows, 2 * f)), t[4].Reshape((rows, f)), t[5].Reshape((rows, f)));
            Cpu.Ops.Activation.ConcatLast(t[4].Reshape((rows, f)), t[5].Reshape((rows, f)), t[6].Reshape((rows, 2 * f)));
        });
        Check.Close(got[1], s, 1e-6, 1e-5, "swiglu");
        Check.Close(got[3], dUg, 1e-6, 1e-5, "swiglu backward");
        Check.BitIdentical(got[6], ug, "split then concat");
    }

    [Test]
    public void EmbeddingGathersAndScattersInOrder()
    {
        const int V = 7, C = 33, N = 65;
        float[] table = Check.Random(V * C, 8), dY = Check.Random(N * C, 9), dTable = Check.Random(V * C, 10);
        var tokens = Enumerable.Range(0, N).Select(i => (float)(i * 5 % V)).ToArray();
        double[] y = new double[N * C], dT = ToDouble(dTable);
        for (var n = 0; n < N; n++)
            for (var c = 0; c < C; c++)
            {
                y[n * C + c] = table[(int)tokens[n] * C + c];
                dT[(int)tokens[n] * C + c] += dY[n * C + c];
            }
        var got = Run(Cpu, [tokens, table, new float[N * C], dY, dTable], t =>
        {
            Cpu.Ops.Embedding.Forward(t[0], t[1].Reshape((V, C)), t[2].Reshape((N, C)));
            Cpu.Ops.Embedding.Backward(t[0], t[3].Reshape((N, C)), t[4].Reshape((V, C)));
        });
        Check.Close(got[2], y, 0, 0, "embedding forward");
        Check.Close(got[4], dT, 1e-6, 1e-5, "embedding backward");
    }

    [TestCase(1, 1)]
    [TestCase(7, 65)]
    [TestCase(33, 7)]
    public void CrossEntropyMatchesFloat64(int n, int v)
    {
        float[] logits = Check.Random(n * v, 11, 5f), targets = Enumerable.Range(0, n).Select(i => (float)(i * 3 % v)).ToArray();
        const float GradScale = 0.25f;
        double[] losses = new double[n], dl = new double[n * v];
        for (var r = 0; r < n; r++)
        {
            var max = Enumerable.Range(0, v).Max(j => (double)logits[r * v + j]);
            var sum = Enumerable.Range(0, v).Sum(j => Math.Exp(logits[r * v + j] - max));
            losses[r] = Math.Log(sum) + max - logits[r * v + (int)targets[r]];
            for (var j = 0; j < v; j++)
                dl[r * v + j] = (Math.Exp(logits[r * v + j] - max) / sum - (j == (int)targets[r] ? 1 : 0)) * GradScale;
        }
        var got = Run(Cpu, [logits, targets, new float[n], new float[1]], t =>
            Cpu.Ops.Loss.CrossEntropy(t[0].Reshape((n, v)), t[1], t[2], t[3], t[0].Reshape((n, v)), GradScale)); // dLogits aliases logits
        Check.Close(got[2], losses, 1e-5, 1e-5, "losses");
        Check.Close(got[3], [losses.Average()], 1e-5, 1e-5, "mean loss");
        Check.Close(got[0], dl, 1e-6, 1e-5, "dLogits");
    }

    [TestCase(1, 0f)]
    [TestCase(65, 1f)]
    [TestCase(1000, 0.5f)]
    public void AdamWMatchesTorchFormula(int n, float clip)
    {
        var step = new AdamWStep(1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, 1 - 0.9f * 0.9f, 1 - 0.95f * 0.95f, clip);
        float[] p = Check.Random(n, 12), g = Check.Random(n, 13), m = Check.Random(n, 14, 0.1f), v = Check.Random(n, 15, 0.01f).Select(Math.Abs).ToArray();
        var mask = Enumerable.Range(0, n).Select(i => (float)(i % 2)).ToArray();
        var gss = new[] { (float)g.Sum(x => (double)x * x) };
        var scale = clip > 0 ? Math.Min(1, clip / (Math.Sqrt(gss[0]) + 1e-6)) : 1;
        double[] ep = new double[n], em = new double[n], ev = new double[n];
        for (var i = 0; i < n; i++)
        {
            var gi = g[i] * scale;
            em[i] = 0.9 * m[i] + 0.1 * gi;
            ev[i] = 0.95 * v[i] + 0.05 * gi * gi;
            ep[i] = p[i] * (1 - 1e-2 * 0.1 * mask[i]) - 1e-2 * (em[i] / step.BiasCorrection1) / (Math.Sqrt(ev[i] / step.BiasCorrection2) + 1e-8);
        }
        var got = Run(Cpu, [p, g, m, v, mask, gss], t => Cpu.Ops.Optimizer.AdamW(step, t[0], t[1], t[2], t[3], t[4], t[5]));
        Check.Close(got[0], ep, 1e-6, 1e-5, "param");
        Check.Close(got[2], em, 1e-7, 1e-5, "m");
        Check.Close(got[3], ev, 1e-8, 1e-5, "v");
    }

    [TestCase(1)]
    [TestCase(33)]
    [TestCase(70_001)]
    public void ElementwiseReductionAndRandomMatchFloat64(int n)
    {
        float[] a = Check.Random(n, 16), b = Check.Random(n, 17);
        var got = Run(Cpu, [a, b, new float[n], new float[n], new float[n], new float[4], new float[n]], t =>
        {
            Cpu.Ops.Elementwise.Add(t[0], t[1], t[2]);
            Cpu.Ops.Elementwise.Scale(t[0], 3f, t[3]);
            Cpu.Ops.Elementwise.Copy(t[1], t[4]);
            Cpu.Ops.Elementwise.Axpy(2f, t[0], t[4]);
            Cpu.Ops.Reduction.Sum(t[0], t[5], 1);
            Cpu.Ops.Reduction.SumSquares(t[0], t[5], 2);
            Cpu.Ops.Elementwise.Fill(t[5].Slice(3, 1), 7f);
            Cpu.Ops.Random.FillUniform(t[6], 42, 9);
        });
        Check.Close(got[2], a.Zip(b, (x, y) => (double)x + y).ToArray(), 1e-7, 1e-7, "add");
        Check.Close(got[3], a.Select(x => 3.0 * x).ToArray(), 1e-7, 1e-7, "scale");
        Check.Close(got[4], a.Zip(b, (x, y) => y + 2.0 * x).ToArray(), 1e-6, 1e-6, "axpy");
        Check.Close(got[5].AsSpan(1), [a.Sum(x => (double)x), a.Sum(x => (double)x * x), 7], 1e-4, 1e-5, "sum, sum of squares, fill");
        var expected = new float[n];
        for (var i = 0; i < n; i++)
            expected[i] = Philox.Uniform(42, 9, (ulong)i);
        Check.BitIdentical(got[6], expected, "Philox uniform");
    }

    [Test]
    public void EveryOpRepeatsBitForBitAndCountsOneLaunch()
    {
        const int R = 40, W = 96, V = 13;
        float[][] inputs = [Check.Random(R * W, 20), Check.Random(W, 21), new float[R * W], new float[R], Check.Random(R * W, 22),
            new float[W], Enumerable.Range(0, R).Select(i => (float)(i % V)).ToArray(), new float[1], new float[R]];
        Deterministic(inputs, t =>
        {
            var ops = Cpu.Ops;
            Assert.That(Launches(Cpu, () => ops.Norm.Forward(t[0], t[1], t[2], t[3], W, Eps)), Is.EqualTo(1));
            Assert.That(Launches(Cpu, () => ops.Norm.Backward(t[4], t[0], t[1], t[3], t[2], t[5], W)), Is.EqualTo(1));
            Assert.That(Launches(Cpu, () => ops.Activation.SwiGluForward(t[0].Reshape((R, W)), t[4].Slice(0, (R, W / 2)))), Is.EqualTo(1));
            Assert.That(Launches(Cpu, () => ops.Reduction.SumSquares(t[0], t[7], 0)), Is.EqualTo(1));
            Assert.That(Launches(Cpu, () => ops.Loss.CrossEntropy(t[0].Slice(0, (R, V)), t[6], t[8], t[7], t[2].Slice(0, (R, V)), 1f)), Is.EqualTo(1));
            Assert.That(Launches(Cpu, () => ops.Embedding.Backward(t[6], t[0].Slice(0, (R, 8)), t[2].Slice(0, (V, 8)))), Is.EqualTo(1));
        }, "ops");
    }

    [Test]
    public void NormAndLossMatchIlgpuKernels()
    {
        const int R = 33, W = 65;
        CrossCheck([Check.Random(R * W, 30), Check.Random(W, 31), new float[R * W], new float[R], Check.Random(R * W, 32), new float[R * W], new float[W]],
            (d, t) =>
            {
                d.Ops.Norm.Forward(t[0], t[1], t[2], t[3], W, Eps);
                d.Ops.Norm.Backward(t[4], t[0], t[1], t[3], t[5], t[6], W);
            }, [2, 3, 5, 6], 1e-5, 1e-4, "rms norm");
    }

    [Test]
    public void LossMatchesIlgpuKernel()
    {
        const int N = 33, V = 65;
        CrossCheck([Check.Random(N * V, 33, 4f), Enumerable.Range(0, N).Select(i => (float)(i * 7 % V)).ToArray(), new float[N], new float[1], new float[N * V]],
            (d, t) => d.Ops.Loss.CrossEntropy(t[0].Reshape((N, V)), t[1], t[2], t[3], t[4].Reshape((N, V)), 0.5f), [2, 3, 4], 1e-5, 1e-5, "cross-entropy");
    }

    [Test]
    public void RopeSwiGluEmbeddingMatchIlgpuKernels()
    {
        var table = RopeTable.Build(7, 8, 10000);
        CrossCheck([Check.Random(2 * 7 * 16, 34), new float[2 * 7 * 16], table], (d, t) => d.Ops.Rope.Forward(t[0].Reshape((2, 7, 16)), t[1].Reshape((2, 7, 16)), t[2], 8),
            [1], 1e-6, 1e-5, "rope");
        CrossCheck([Check.Random(7 * 66, 35), new float[7 * 33], Check.Random(7 * 33, 36), new float[7 * 66]], (d, t) =>
        {
            d.Ops.Activation.SwiGluForward(t[0].Reshape((7, 66)), t[1].Reshape((7, 33)));
            d.Ops.Activation.SwiGluBackward(t[2].Reshape((7, 33)), t[0].Reshape((7, 66)), t[3].Reshape((7, 66)));
        }, [1, 3], 1e-6, 1e-5, "swiglu");
        CrossCheck([[3, 1, 3, 0], Check.Random(5 * 7, 37), new float[4 * 7], Check.Random(4 * 7, 38), new float[5 * 7]], (d, t) =>
        {
            d.Ops.Embedding.Forward(t[0], t[1].Reshape((5, 7)), t[2].Reshape((4, 7)));
            d.Ops.Embedding.Backward(t[0], t[3].Reshape((4, 7)), t[4].Reshape((5, 7)));
        }, [2, 4], 1e-6, 1e-5, "embedding");
    }

    [Test]
    public void AdamWMatchesIlgpuKernel()
    {
        const int N = 65;
        var step = new AdamWStep(1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.19f, 0.0975f, 1f);
        CrossCheck([Check.Random(N, 39), Check.Random(N, 40), Check.Random(N, 41, 0.1f), Check.Random(N, 42, 0.01f).Select(Math.Abs).ToArray(),
                Enumerable.Range(0, N).Select(i => (float)(i % 2)).ToArray(), [30f]],
            (d, t) => d.Ops.Optimizer.AdamW(step, t[0], t[1], t[2], t[3], t[4], t[5]), [0, 2, 3], 1e-6, 1e-5, "adamw");
    }
}
