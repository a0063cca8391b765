// One line of the conformance table and the error measure every check reports: the largest elementwise
// error relative to max(|expected|, rms(expected)), so tiny expected values do not blow the ratio up.
namespace SddIlgpu.Training.Conformance;

/// <summary>
/// The outcome of one check: <see cref="Error"/> is the max relative error (see <see cref="ErrorMeasure"/>),
/// compared with <see cref="Tolerance"/>. A check that threw reports NaN and the exception in <see cref="Note"/>.
/// </summary>
public sealed record CheckResult(string Name, double Error, double Tolerance, string? Note = null)
{
    public bool Passed => !double.IsNaN(Error) && Error <= Tolerance;

    public static CheckResult Failed(string name, double tolerance, Exception e) =>
        new(name, double.NaN, tolerance, $"{e.GetType().Name}: {e.Message}");
}

public static class ErrorMeasure
{
    /// <summary>
    /// max_i |a_i − e_i| / max(|e_i|, rms(e)). Elementwise relative error where values are large, absolute
    /// error scaled by the tensor's RMS where they are near zero (cancellation). NaN or ∞ in a gives ∞.
    /// </summary>
    public static double MaxRelative(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected)
    {
        if (actual.Length != expected.Length)
            throw new ArgumentException($"Compared lengths differ: {actual.Length} vs {expected.Length}.");
        double sumSq = 0;
        foreach (var e in expected)
            sumSq += e * e;
        var floor = Math.Max(Math.Sqrt(sumSq / Math.Max(1, expected.Length)), 1e-30);
        double worst = 0;
        for (var i = 0; i < actual.Length; i++)
        {
            if (!float.IsFinite(actual[i]))
                return double.PositiveInfinity;
            worst = Math.Max(worst, Math.Abs(actual[i] - expected[i]) / Math.Max(Math.Abs(expected[i]), floor));
        }
        return worst;
    }

    /// <summary>The worst of several (actual, expected) pairs.</summary>
    public static double Worst(params (float[] Actual, double[] Expected)[] pairs) =>
        pairs.Max(p => MaxRelative(p.Actual, p.Expected));

    /// <summary>Norm-wise relative error ‖a − e‖ / ‖e‖ (the golden fixtures' measure, spec §7).</summary>
    public static double NormRelative(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        if (actual.Length != expected.Length)
            throw new ArgumentException($"Compared lengths differ: {actual.Length} vs {expected.Length}.");
        double num = 0, den = 0;
        for (var i = 0; i < actual.Length; i++)
        {
            if (!float.IsFinite(actual[i]))
                return double.PositiveInfinity;
            double d = actual[i] - expected[i];
            num += d * d;
            den += (double)expected[i] * expected[i];
        }
        return Math.Sqrt(num) / Math.Max(Math.Sqrt(den), 1e-30);
    }

    public static double[] ToDouble(float[] a) => Array.ConvertAll(a, x => (double)x);
}
