// Fused AdamW against a float64 host implementation of torch.optim.AdamW with global-norm clipping (spec §6,
// reference adamw_steps()): three steps, with clipping active or off, and a per-element decay mask.
using NUnit.Framework;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;
using SddIlgpu.Tests.Support;

namespace SddIlgpu.Tests.Tensors;

[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.All))]
public sealed class OptimizerTests(string deviceName)
{
    const double Lr = 1e-2, Beta1 = 0.9, Beta2 = 0.95, Eps = 1e-8, WeightDecay = 0.1;
    Device device = null!;

    [OneTimeSetUp]
    public void Open() => device = TestDevices.Get(deviceName);

    /// <summary>One torch AdamW step in float64: clip, decay first, then the bias-corrected Adam update.</summary>
    static void ReferenceStep(int step, double clip, double[] p, double[] grad, double[] m, double[] v, double[] mask)
    {
        var norm = Math.Sqrt(grad.Sum(g => g * g));
        var scale = clip > 0 ? Math.Min(1, clip / (norm + 1e-6)) : 1;
        for (var i = 0; i < p.Length; i++)
        {
            var g = grad[i] * scale;
            if (mask[i] != 0)
                p[i] *= 1 - Lr * WeightDecay;
            m[i] = Beta1 * m[i] + (1 - Beta1) * g;
            v[i] = Beta2 * v[i] + (1 - Beta2) * g * g;
            var mHat = m[i] / (1 - Math.Pow(Beta1, step));
            var vHat = v[i] / (1 - Math.Pow(Beta2, step));
            p[i] -= Lr * mHat / (Math.Sqrt(vHat) + Eps);
        }
    }

    [TestCase(1, 1.0)]
    [TestCase(33, 1.0)]
    [TestCase(65, 0.5)]
    [TestCase(65, 0.0)]
    public void ThreeStepsMatchTorchAdamWInFloat64(int n, double clip)
    {
        var p = GradCheck.RandomExact(n, 1);
        var mask = Enumerable.Range(0, n).Select(i => i % 3 == 1 ? 0.0 : 1.0).ToArray();
        var (m, v) = (new double[n], new double[n]);
        using var arena = device.Allocate(5L * n + 1, "adamw");
        var tp = arena.Take(n);
        var tGrad = arena.Take(n);
        var tm = arena.Take(n);
        var tv = arena.Take(n);
        var tMask = arena.Take(n);
        var tSumSquares = arena.Take(1);
        tp.Upload(GradCheck.Narrow(p));
        tMask.Upload(GradCheck.Narrow(mask));

        for (var step = 1; step <= 3; step++)
        {
            // Gradient norms around 2·√n: clipping to 1 or 0.5 is active on every step but the 1-element case's.
            var grad = GradCheck.RandomExact(n, 10 + step, 4f);
            tGrad.Upload(GradCheck.Narrow(grad));
            tSumSquares.Upload([(float)grad.Sum(g => g * g)]);
            var hyper = new AdamWStep((float)Lr, (float)Beta1, (float)Beta2, (float)Eps, (float)WeightDecay,
                (float)(1 - Math.Pow(Beta1, step)), (float)(1 - Math.Pow(Beta2, step)), (float)clip);
            device.Ops.Optimizer.AdamW(hyper, tp, tGrad, tm, tv, tMask, tSumSquares);
            ReferenceStep(step, clip, p, grad, m, v, mask);

            Check.Close(tp.ToArray(), p, 1e-6, 1e-5, $"param after step {step}");
            Check.Close(tm.ToArray(), m, 1e-7, 1e-5, $"m after step {step}");
            Check.Close(tv.ToArray(), v, 1e-8, 1e-5, $"v after step {step}");
        }
    }
}
