// Central finite differences of a float64 reference: the gradient of a scalar loss (usually Σ out·dOut)
// with respect to every element of one input, (L(x + h) − L(x − h)) / 2h, compared with an analytic gradient.
using NUnit.Framework;

namespace SddIlgpu.Tests.Support;

public static class GradCheck
{
    /// <summary>∂loss/∂x[i] for every i by central differences; <paramref name="loss"/> reads x, which is restored.</summary>
    public static double[] Numeric(double[] x, Func<double> loss, double h = 1e-6)
    {
        var grad = new double[x.Length];
        for (var i = 0; i < x.Length; i++)
        {
            var keep = x[i];
            x[i] = keep + h;
            var plus = loss();
            x[i] = keep - h;
            var minus = loss();
            x[i] = keep;
            grad[i] = (plus - minus) / (2 * h);
        }
        return grad;
    }

    /// <summary>Asserts the analytic gradient of loss with respect to x matches central differences.</summary>
    public static void Matches(double[] analytic, double[] x, Func<double> loss, string label, double tol = 1e-6)
    {
        var numeric = Numeric(x, loss);
        Assert.That(analytic, Has.Length.EqualTo(numeric.Length), $"{label}: length");
        for (var i = 0; i < numeric.Length; i++)
            if (Math.Abs(analytic[i] - numeric[i]) > tol * (1 + Math.Abs(numeric[i])))
                Assert.Fail($"{label}: analytic {analytic[i]:R} vs finite difference {numeric[i]:R} at [{i}]");
    }

    /// <summary>Σ a·b, the scalar loss whose gradient with respect to out is dOut.</summary>
    public static double Dot(double[] a, double[] b)
    {
        var s = 0.0;
        for (var i = 0; i < a.Length; i++)
            s += a[i] * b[i];
        return s;
    }

    public static double[] Widen(float[] a) => Array.ConvertAll(a, v => (double)v);

    /// <summary>Test data in [-scale, scale) as float64 values that are exactly representable in float32.</summary>
    public static double[] RandomExact(int n, int seed, float scale = 1f) => Widen(Check.Random(n, seed, scale));

    public static float[] Narrow(double[] a) => Array.ConvertAll(a, v => (float)v);
}
