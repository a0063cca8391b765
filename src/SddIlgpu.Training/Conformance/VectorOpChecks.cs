// Conformance of the flat-vector ops: elementwise, deterministic reductions, Philox random numbers (must be
// bit-identical to the host) and the AdamW update against a float64 host torch.optim.AdamW (spec §6).
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;
using SddIlgpu.Tensors.Random;
using static SddIlgpu.Training.Conformance.ErrorMeasure;

namespace SddIlgpu.Training.Conformance;

internal static class VectorOpChecks
{
    const int N = 1031;

    public static IEnumerable<(string Name, double Tolerance, Func<Probe, double> Run)> All()
    {
        yield return ("fill/copy", 0, FillCopy);
        yield return ("add/scale/axpy", 1e-6, AddScaleAxpy);
        yield return ("sum/sum of squares", 1e-5, Sums);
        yield return ("philox uniform (bitwise)", 0, Random);
        yield return ("adamw step x2 (clip, decay)", 1e-5, AdamW);
    }

    static double FillCopy(Probe p)
    {
        var x = Probe.Random(N, 91);
        Tensor tx = p.Up(x, N, "x"), y = p.Zeros(N, "y"), f = p.Zeros(N, "f");
        p.Ops.Elementwise.Copy(tx, y);
        p.Ops.Elementwise.Fill(f, 0.375f);
        return Worst((Probe.Down(y), ToDouble(x)), (Probe.Down(f), Enumerable.Repeat(0.375, N).ToArray()));
    }

    static double AddScaleAxpy(Probe p)
    {
        float[] a = Probe.Random(N, 92), b = Probe.Random(N, 93);
        double[] sum = new double[N], scaled = new double[N], axpy = new double[N];
        for (var i = 0; i < N; i++)
        {
            sum[i] = (double)a[i] + b[i];
            scaled[i] = -1.5 * a[i];
            axpy[i] = b[i] + 0.25 * a[i];
        }
        Tensor ta = p.Up(a, N, "a"), tb = p.Up(b, N, "b"), ts = p.Zeros(N, "sum"), tsc = p.Zeros(N, "scaled");
        p.Ops.Elementwise.Add(ta, tb, ts);
        p.Ops.Elementwise.Scale(ta, -1.5f, tsc);
        p.Ops.Elementwise.Axpy(0.25f, ta, tb);
        return Worst((Probe.Down(ts), sum), (Probe.Down(tsc), scaled), (Probe.Down(tb), axpy));
    }

    static double Sums(Probe p)
    {
        const int Long = 4099;
        var x = Probe.Random(Long, 94);
        var o0 = new float[] { 7, 7, 7 };
        var o = p.Up(o0, 3, "sums");
        var tx = p.Up(x, Long, "x");
        p.Ops.Reduction.SumSquares(tx, o, 2);
        p.Ops.Reduction.Sum(tx, o, 0);
        return MaxRelative(Probe.Down(o), [x.Sum(v => (double)v), 7, x.Sum(v => (double)v * v)]);
    }

    static double Random(Probe p)
    {
        const ulong Seed = 0x5EED, Stream = 42;
        var y = p.Zeros(N, "uniform");
        p.Ops.Random.FillUniform(y, Seed, Stream);
        var got = Probe.Down(y);
        var mismatches = 0;
        for (var i = 0; i < N; i++)
            if (BitConverter.SingleToInt32Bits(got[i]) != BitConverter.SingleToInt32Bits(Philox.Uniform(Seed, Stream, (ulong)i)))
                mismatches++;
        return mismatches;
    }

    static double AdamW(Probe p)
    {
        var param = Probe.Random(N, 95);
        var grad = Probe.Random(N, 96, 0.2f);
        var mask = new float[N];
        for (var i = 0; i < N; i++)
            mask[i] = i % 3 == 0 ? 0 : 1;
        var gss = grad.Sum(g => (double)g * g);
        var host = new HostAdamW(ToDouble(param), 0.9, 0.95, 1e-8, 0.1, 1.0);
        Tensor tp = p.Up(param, N, "param"), tg = p.Up(grad, N, "grad"), tm = p.Zeros(N, "m"), tv = p.Zeros(N, "v");
        Tensor tmask = p.Up(mask, N, "mask"), tgss = p.Up([(float)gss], 1, "gradSumSquares");
        for (var t = 1; t <= 2; t++)
        {
            var lr = 0.01 * t;
            host.Step(lr, grad, mask, gss);
            p.Ops.Optimizer.AdamW(new AdamWStep((float)lr, 0.9f, 0.95f, 1e-8f, 0.1f,
                (float)(1 - Math.Pow(0.9, t)), (float)(1 - Math.Pow(0.95, t)), 1f), tp, tg, tm, tv, tmask, tgss);
        }
        return Worst((Probe.Down(tp), host.Param), (Probe.Down(tm), host.M), (Probe.Down(tv), host.V));
    }
}

/// <summary>torch.optim.AdamW in float64 with global-norm clipping (spec §6), the host reference of the optimizer op.</summary>
public sealed class HostAdamW(double[] param, double beta1, double beta2, double eps, double weightDecay, double clip)
{
    int t;

    public double[] Param { get; } = param;
    public double[] M { get; } = new double[param.Length];
    public double[] V { get; } = new double[param.Length];

    /// <summary>One step with gradient <paramref name="grad"/> whose squared norm is <paramref name="gradSumSquares"/>.</summary>
    public void Step(double lr, ReadOnlySpan<float> grad, ReadOnlySpan<float> decayMask, double gradSumSquares)
    {
        t++;
        var scale = clip > 0 ? Math.Min(1, clip / (Math.Sqrt(gradSumSquares) + 1e-6)) : 1;
        double bc1 = 1 - Math.Pow(beta1, t), bc2 = 1 - Math.Pow(beta2, t);
        for (var i = 0; i < Param.Length; i++)
        {
            var g = grad[i] * scale;
            Param[i] *= 1 - lr * weightDecay * decayMask[i];
            M[i] = beta1 * M[i] + (1 - beta1) * g;
            V[i] = beta2 * V[i] + (1 - beta2) * g * g;
            Param[i] -= lr * (M[i] / bc1) / (Math.Sqrt(V[i] / bc2) + eps);
        }
    }
}
