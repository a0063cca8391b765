// One tolerance rule for every comparison: |a − e| ≤ atol + rtol·|e|, reporting the label, the worst
// error and the first mismatches.
using System.Text;
using NUnit.Framework;

namespace SddIlgpu.Tests.Support;

public static class Check
{
    public static void Close(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected, double atol, double rtol, string label)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), $"{label}: length");
        var bad = new StringBuilder();
        int mismatches = 0, worstAt = -1;
        double worst = 0;
        for (var i = 0; i < actual.Length; i++)
        {
            var e = expected[i];
            var err = Math.Abs(actual[i] - e);
            var excess = err - (atol + rtol * Math.Abs(e));
            if (double.IsNaN(actual[i]) || excess > 0)
            {
                if (mismatches++ < 5)
                    bad.Append($"\n  [{i}] got {actual[i]:R}, expected {e:R} (|err| {err:G3})");
            }
            if (err > worst || double.IsNaN(err))
            {
                worst = err;
                worstAt = i;
            }
        }
        if (mismatches > 0)
            Assert.Fail($"{label}: {mismatches} of {actual.Length} values outside atol {atol:G3} + rtol {rtol:G3}; worst |err| {worst:G3} at {worstAt}{bad}");
    }

    public static void Close(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double atol, double rtol, string label)
    {
        var e = new double[expected.Length];
        for (var i = 0; i < e.Length; i++)
            e[i] = expected[i];
        Close(actual, e, atol, rtol, label);
    }

    /// <summary>Norm-wise relative error ‖a − e‖ / max(‖e‖, tiny), the measure the golden tolerances use.</summary>
    public static double RelativeNormError(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected)
    {
        double num = 0, den = 0;
        for (var i = 0; i < actual.Length; i++)
        {
            var d = actual[i] - expected[i];
            num += d * d;
            den += expected[i] * expected[i];
        }
        return Math.Sqrt(num) / Math.Max(Math.Sqrt(den), 1e-30);
    }

    public static void BitIdentical(ReadOnlySpan<float> a, ReadOnlySpan<float> b, string label)
    {
        Assert.That(a.Length, Is.EqualTo(b.Length), $"{label}: length");
        for (var i = 0; i < a.Length; i++)
            if (BitConverter.SingleToInt32Bits(a[i]) != BitConverter.SingleToInt32Bits(b[i]))
                Assert.Fail($"{label}: not bit-identical at [{i}]: {a[i]:R} vs {b[i]:R}");
    }

    /// <summary>Deterministic test data in [-scale, scale).</summary>
    public static float[] Random(int n, int seed, float scale = 1f)
    {
        var r = new System.Random(seed);
        var a = new float[n];
        for (var i = 0; i < n; i++)
            a[i] = (float)((r.NextDouble() * 2 - 1) * scale);
        return a;
    }
}
