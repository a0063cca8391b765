// Causal grouped-query attention against a float64 reference written here: per head
// softmax(q·kᵀ/√HS + mask)·v, its hand-derived backward, and central finite differences of loss = Σ ctx·dCtx.
using NUnit.Framework;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;
using SddIlgpu.Tests.Support;

namespace SddIlgpu.Tests.Tensors;

[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Kernel))]
public sealed class AttentionTests(string deviceName)
{
    static readonly AttentionShape Tiny = new(B: 2, T: 5, NH: 4, KVH: 2, HS: 4);
    Device device = null!;

    [OneTimeSetUp]
    public void Open() => device = TestDevices.Wide(deviceName); // launches 256-thread groups

    [TestCase(2, 5, 4, 2, 4)]
    [TestCase(1, 7, 3, 3, 5)]
    [TestCase(1, 1, 2, 1, 3)]
    public void ForwardMatchesFloat64AndRepeatsBitForBit(int b, int t, int nh, int kvh, int hs)
    {
        var s = new AttentionShape(b, t, nh, kvh, hs);
        using var run = new Run(device, s);
        run.Forward();
        var (ctx, probs) = AttentionReference.Forward(s, run.Q, run.K, run.V);
        Check.Close(run.Probs.ToArray(), probs, 1e-6, 1e-5, "probs");
        var first = run.Ctx.ToArray();
        Check.Close(first, ctx, 1e-6, 1e-5, "ctx");
        run.Forward();
        Check.BitIdentical(run.Ctx.ToArray(), first, "repeat");
    }

    [TestCase(2, 5, 4, 2, 4)]
    [TestCase(1, 7, 3, 3, 5)]
    [TestCase(2, 3, 4, 1, 2)]
    public void BackwardMatchesTheFloat64Backward(int b, int t, int nh, int kvh, int hs)
    {
        var s = new AttentionShape(b, t, nh, kvh, hs);
        using var run = new Run(device, s);
        run.Forward();
        run.Backward();
        var (dq, dk, dv) = AttentionReference.Backward(s, run.Q, run.K, run.V, run.DCtxHost);
        Check.Close(run.DQ.ToArray(), dq, 1e-6, 1e-5, "dQ");
        Check.Close(run.DK.ToArray(), dk, 1e-6, 1e-5, "dK");
        Check.Close(run.DV.ToArray(), dv, 1e-6, 1e-5, "dV");
    }

    /// <summary>The causal softmaxes at the GPU group (256 threads) and at 2 threads, on every kernel device.</summary>
    [TestCase(256)]
    [TestCase(2)]
    public void CooperativeGroupSizesMatchFloat64(int threads)
    {
        if (device.Kind == BackendKind.Cpu)
            Assert.Ignore("The managed cpu path has its own softmax (ManagedAttentionTests).");
        using (CooperativeLaunch.Threads(device, threads))
        {
            ForwardMatchesFloat64AndRepeatsBitForBit(2, 5, 4, 2, 4);
            ForwardMatchesFloat64AndRepeatsBitForBit(1, 40, 2, 1, 3);
            BackwardMatchesTheFloat64Backward(1, 7, 3, 3, 5);
            BackwardMatchesTheFloat64Backward(1, 40, 2, 1, 3);
        }
    }

    /// <summary>
    /// The CPU accelerator's GEMM default is the simple kernel; run attention through the tiled kernels, whose causal
    /// products skip score tiles above the diagonal and the zero part of k: T = 70 crosses one 64-tile boundary
    /// (64×64 tiles), T = 130 sends the score products through the 128×128 register-blocked kernel.
    /// </summary>
    [TestCase(0)]
    [TestCase(70)]
    [TestCase(130)]
    public void ForwardAndBackwardThroughTheTiledGemmMatchFloat64(int t)
    {
        var s = t == 0 ? Tiny : new AttentionShape(1, t, 2, 1, 3);
        var gemm = device.Kernels.Gemm;
        var keep = gemm.UseSimple;
        using var run = new Run(device, s);
        try
        {
            gemm.UseSimple = false;
            run.Forward();
            run.Backward();
        }
        finally
        {
            gemm.UseSimple = keep;
        }
        Check.Close(run.Ctx.ToArray(), AttentionReference.Forward(s, run.Q, run.K, run.V).Ctx, 1e-6, 1e-5, "ctx (tiled)");
        var (dq, dk, dv) = AttentionReference.Backward(s, run.Q, run.K, run.V, run.DCtxHost);
        Check.Close(run.DQ.ToArray(), dq, 1e-6, 1e-5, "dQ (tiled)");
        Check.Close(run.DK.ToArray(), dk, 1e-6, 1e-5, "dK (tiled)");
        Check.Close(run.DV.ToArray(), dv, 1e-6, 1e-5, "dV (tiled)");
    }

    [Test]
    public void BackwardMatchesCentralFiniteDifferencesOfTheFloat64Loss()
    {
        var s = Tiny;
        using var run = new Run(device, s);
        run.Forward();
        run.Backward();
        var q = run.Q.Select(x => (double)x).ToArray();
        var k = run.K.Select(x => (double)x).ToArray();
        var v = run.V.Select(x => (double)x).ToArray();
        double Loss() => AttentionReference.Forward(s, q, k, v).Ctx.Zip(run.DCtxHost, (c, d) => c * d).Sum();
        Check.Close(run.DQ.ToArray(), Numeric(q, Loss), 1e-5, 1e-4, "dQ vs finite differences");
        Check.Close(run.DK.ToArray(), Numeric(k, Loss), 1e-5, 1e-4, "dK vs finite differences");
        Check.Close(run.DV.ToArray(), Numeric(v, Loss), 1e-5, 1e-4, "dV vs finite differences");
    }

    static double[] Numeric(double[] x, Func<double> loss)
    {
        const double h = 1e-5;
        var g = new double[x.Length];
        for (var i = 0; i < x.Length; i++)
        {
            var keep = x[i];
            x[i] = keep + h;
            var up = loss();
            x[i] = keep - h;
            var down = loss();
            x[i] = keep;
            g[i] = (up - down) / (2 * h);
        }
        return g;
    }

    [Test]
    public void ShapeErrorsAreClear()
    {
        using var run = new Run(device, Tiny);
        var e = Assert.Throws<ArgumentException>(() => device.Kernels.Attention.Forward(Tiny with { T = 6 }, run.QT, run.KT, run.VT, run.Probs, run.Ctx))!;
        Assert.That(e.Message, Does.Contain("q").And.Contain("expected 192 elements, got 160"));
        e = Assert.Throws<ArgumentException>(() => device.Kernels.Attention.Forward(Tiny with { KVH = 3 }, run.QT, run.KT, run.VT, run.Probs, run.Ctx))!;
        Assert.That(e.Message, Does.Contain("KVH must divide NH"));
        e = Assert.Throws<ArgumentException>(() => device.Kernels.Attention.CausalSoftmaxForward(run.Ctx, 1f))!;
        Assert.That(e.Message, Does.Contain("last two axes equal"));
    }

    /// <summary>Device tensors and host inputs of one attention call.</summary>
    sealed class Run : IDisposable
    {
        readonly Arena arena;
        readonly Device device;
        readonly AttentionShape s;

        public Run(Device device, AttentionShape s)
        {
            this.device = device;
            this.s = s;
            int nq = s.B * s.T * s.NH * s.HS, nkv = s.B * s.T * s.KVH * s.HS, np = s.B * s.NH * s.T * s.T;
            arena = device.Allocate(4L * nq + 4L * nkv + 2L * np, "attention");
            QT = arena.Take((s.B, s.T, s.NH * s.HS), "q");
            KT = arena.Take((s.B, s.T, s.KVH * s.HS), "k");
            VT = arena.Take((s.B, s.T, s.KVH * s.HS), "v");
            Ctx = arena.Take((s.B, s.T, s.NH * s.HS), "ctx");
            Probs = arena.Take((s.B, s.NH, s.T, s.T), "probs");
            DProbs = arena.Take((s.B, s.NH, s.T, s.T), "dProbs");
            DCtx = arena.Take((s.B, s.T, s.NH * s.HS), "dCtx");
            DQ = arena.Take((s.B, s.T, s.NH * s.HS), "dQ");
            DK = arena.Take((s.B, s.T, s.KVH * s.HS), "dK");
            DV = arena.Take((s.B, s.T, s.KVH * s.HS), "dV");
            Q = Check.Random(nq, 1, 1.5f);
            K = Check.Random(nkv, 2, 1.5f);
            V = Check.Random(nkv, 3);
            DCtxHost = Check.Random(nq, 4).Select(x => (double)x).ToArray();
            QT.Upload(Q);
            KT.Upload(K);
            VT.Upload(V);
            DCtx.Upload(DCtxHost.Select(x => (float)x).ToArray());
            // Gradients are overwritten: start them dirty.
            foreach (var g in new[] { DQ, DK, DV, DProbs })
                device.Ops.Elementwise.Fill(g, float.NaN);
        }

        public float[] Q { get; }
        public float[] K { get; }
        public float[] V { get; }
        public double[] DCtxHost { get; }
        public Tensor QT { get; }
        public Tensor KT { get; }
        public Tensor VT { get; }
        public Tensor Ctx { get; }
        public Tensor Probs { get; }
        public Tensor DProbs { get; }
        public Tensor DCtx { get; }
        public Tensor DQ { get; }
        public Tensor DK { get; }
        public Tensor DV { get; }

        public void Forward() => device.Kernels.Attention.Forward(s, QT, KT, VT, Probs, Ctx);

        public void Backward() => device.Kernels.Attention.Backward(s, DCtx, QT, KT, VT, Ctx, Probs, DProbs, DQ, DK, DV);

        public void Dispose() => arena.Dispose();
    }
}

/// <summary>Float64 causal grouped-query attention and its backward, loop by loop from the definition.</summary>
internal static class AttentionReference
{
    static int Qi(in AttentionShape s, int b, int t, int h, int d) => ((b * s.T + t) * s.NH + h) * s.HS + d;

    static int Kvi(in AttentionShape s, int b, int t, int g, int d) => ((b * s.T + t) * s.KVH + g) * s.HS + d;

    public static (double[] Ctx, double[] Probs) Forward(in AttentionShape s, float[] q, float[] k, float[] v) =>
        Forward(s, q.Select(x => (double)x).ToArray(), k.Select(x => (double)x).ToArray(), v.Select(x => (double)x).ToArray());

    public static (double[] Ctx, double[] Probs) Forward(in AttentionShape s, double[] q, double[] k, double[] v)
    {
        var ctx = new double[q.Length];
        var probs = new double[s.B * s.NH * s.T * s.T];
        var scale = 1 / Math.Sqrt(s.HS);
        for (var b = 0; b < s.B; b++)
            for (var h = 0; h < s.NH; h++)
                for (var i = 0; i < s.T; i++)
                {
                    var g = h / s.Rep;
                    var row = ((b * s.NH + h) * s.T + i) * s.T;
                    var max = double.NegativeInfinity;
                    for (var j = 0; j <= i; j++)
                    {
                        double dot = 0;
                        for (var d = 0; d < s.HS; d++)
                            dot += q[Qi(s, b, i, h, d)] * k[Kvi(s, b, j, g, d)];
                        probs[row + j] = dot * scale;
                        max = Math.Max(max, probs[row + j]);
                    }
                    double sum = 0;
                    for (var j = 0; j <= i; j++)
                        sum += probs[row + j] = Math.Exp(probs[row + j] - max);
                    for (var j = 0; j <= i; j++)
                    {
                        probs[row + j] /= sum;
                        for (var d = 0; d < s.HS; d++)
                            ctx[Qi(s, b, i, h, d)] += probs[row + j] * v[Kvi(s, b, j, g, d)];
                    }
                }
        return (ctx, probs);
    }

    public static (double[] DQ, double[] DK, double[] DV) Backward(in AttentionShape s, float[] q, float[] k, float[] v, double[] dCtx)
    {
        var probs = Forward(s, q, k, v).Probs;
        double[] dq = new double[q.Length], dk = new double[k.Length], dv = new double[v.Length];
        var scale = 1 / Math.Sqrt(s.HS);
        var dP = new double[s.T];
        for (var b = 0; b < s.B; b++)
            for (var h = 0; h < s.NH; h++)
                for (var i = 0; i < s.T; i++)
                {
                    var g = h / s.Rep;
                    var row = ((b * s.NH + h) * s.T + i) * s.T;
                    double dot = 0;
                    for (var j = 0; j <= i; j++)
                    {
                        dP[j] = 0;
                        for (var d = 0; d < s.HS; d++)
                        {
                            dP[j] += dCtx[Qi(s, b, i, h, d)] * v[Kvi(s, b, j, g, d)];
                            dv[Kvi(s, b, j, g, d)] += probs[row + j] * dCtx[Qi(s, b, i, h, d)];
                        }
                        dot += dP[j] * probs[row + j];
                    }
                    for (var j = 0; j <= i; j++)
                    {
                        var dS = probs[row + j] * (dP[j] - dot) * scale;
                        for (var d = 0; d < s.HS; d++)
                        {
                            dq[Qi(s, b, i, h, d)] += dS * k[Kvi(s, b, j, g, d)];
                            dk[Kvi(s, b, j, g, d)] += dS * q[Qi(s, b, i, h, d)];
                        }
                    }
                }
        return (dq, dk, dv);
    }
}
