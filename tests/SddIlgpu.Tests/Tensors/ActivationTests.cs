// SwiGLU over the [up | gate] layout against a float64 reference (spec §3: s = up ⊙ silu(gate)), its
// backward against the reference and finite differences, and ConcatLast/SplitLast as exact copies.
using NUnit.Framework;
using SddIlgpu.Tensors;
using SddIlgpu.Tests.Support;

namespace SddIlgpu.Tests.Tensors;

[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.All))]
public sealed class ActivationTests(string deviceName)
{
    Device device = null!;

    [OneTimeSetUp]
    public void Open() => device = TestDevices.Get(deviceName);

    static double Sigmoid(double z) => 1 / (1 + Math.Exp(-z));

    static double[] Reference(double[] upGate, int rows, int hidden)
    {
        var s = new double[rows * hidden];
        for (var r = 0; r < rows; r++)
            for (var f = 0; f < hidden; f++)
            {
                double up = upGate[r * 2 * hidden + f], gate = upGate[r * 2 * hidden + hidden + f];
                s[r * hidden + f] = up * gate * Sigmoid(gate);
            }
        return s;
    }

    static double[] ReferenceBackward(double[] dS, double[] upGate, int rows, int hidden)
    {
        var d = new double[upGate.Length];
        for (var r = 0; r < rows; r++)
            for (var f = 0; f < hidden; f++)
            {
                int upAt = r * 2 * hidden + f, gateAt = upAt + hidden;
                double up = upGate[upAt], gate = upGate[gateAt], sig = Sigmoid(gate), ds = dS[r * hidden + f];
                d[upAt] = ds * gate * sig;
                d[gateAt] = ds * up * (sig + gate * sig * (1 - sig));
            }
        return d;
    }

    [TestCase(1, 1)]
    [TestCase(7, 33)]
    [TestCase(3, 65)]
    public void SwiGluMatchesFloat64(int rows, int hidden)
    {
        var upGate = GradCheck.RandomExact(rows * 2 * hidden, 1, 4f);
        upGate[0] = -100; // silu saturates without NaN
        var dS = GradCheck.RandomExact(rows * hidden, 2);
        using var arena = device.Allocate(4L * rows * hidden + 2L * rows * hidden, "swiglu");
        var tUpGate = arena.Take((rows, 2 * hidden));
        var ts = arena.Take((rows, hidden));
        var tdS = arena.Take((rows, hidden));
        var tdUpGate = arena.Take((rows, 2 * hidden));
        tUpGate.Upload(GradCheck.Narrow(upGate));
        tdS.Upload(GradCheck.Narrow(dS));

        device.Ops.Activation.SwiGluForward(tUpGate, ts);
        Check.Close(ts.ToArray(), Reference(upGate, rows, hidden), 1e-6, 1e-5, "s");

        device.Ops.Elementwise.Fill(tdUpGate, 7f); // overwritten, not accumulated
        device.Ops.Activation.SwiGluBackward(tdS, tUpGate, tdUpGate);
        Check.Close(tdUpGate.ToArray(), ReferenceBackward(dS, upGate, rows, hidden), 1e-6, 1e-5, "dUpGate");
    }

    [TestCase(2, 3)]
    public void ReferenceBackwardMatchesFiniteDifferences(int rows, int hidden)
    {
        var upGate = GradCheck.RandomExact(rows * 2 * hidden, 3, 3f);
        var dS = GradCheck.RandomExact(rows * hidden, 4);
        GradCheck.Matches(ReferenceBackward(dS, upGate, rows, hidden), upGate,
            () => GradCheck.Dot(Reference(upGate, rows, hidden), dS), "dUpGate");
    }

    [TestCase(1, 1, 1)]
    [TestCase(7, 33, 65)]
    [TestCase(5, 65, 7)]
    public void ConcatThenSplitAreExactCopies(int rows, int na, int nb)
    {
        var a = Check.Random(rows * na, 5);
        var b = Check.Random(rows * nb, 6);
        using var arena = device.Allocate(2L * rows * (na + nb), "concat");
        var ta = arena.Take((rows, na));
        var tb = arena.Take((rows, nb));
        var ty = arena.Take((rows, na + nb));
        ta.Upload(a);
        tb.Upload(b);

        device.Ops.Activation.ConcatLast(ta, tb, ty);
        var expected = new float[rows * (na + nb)];
        for (var r = 0; r < rows; r++)
        {
            Array.Copy(a, r * na, expected, r * (na + nb), na);
            Array.Copy(b, r * nb, expected, r * (na + nb) + na, nb);
        }
        Check.BitIdentical(ty.ToArray(), expected, "concat");

        device.Ops.Elementwise.Fill(ta, 0f);
        device.Ops.Elementwise.Fill(tb, 0f);
        device.Ops.Activation.SplitLast(ty, ta, tb);
        Check.BitIdentical(ta.ToArray(), a, "split a");
        Check.BitIdentical(tb.ToArray(), b, "split b");
    }
}
