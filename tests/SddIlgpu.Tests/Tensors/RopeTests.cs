// Half-split rotary embedding against a float64 reference that computes its own angles t·θ^(−2i/HS)
// (reference rope()): forward, backward (inverse rotation) against the reference and finite differences,
// in-place use, and forward-then-backward returning the input.
using NUnit.Framework;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;
using SddIlgpu.Tests.Support;

namespace SddIlgpu.Tests.Tensors;

[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.All))]
public sealed class RopeTests(string deviceName)
{
    const double Theta = 10000;
    Device device = null!;

    [OneTimeSetUp]
    public void Open() => device = TestDevices.Get(deviceName);

    /// <summary>x (B, T, H·HS) rotated by sign·angle; sign −1 is the backward (the transpose).</summary>
    static double[] Reference(double[] x, int seqLen, int heads, int headDim, double sign = 1)
    {
        var half = headDim / 2;
        var y = new double[x.Length];
        for (var row = 0; row < x.Length / (heads * headDim); row++)
            for (var h = 0; h < heads; h++)
                for (var i = 0; i < half; i++)
                {
                    var angle = row % seqLen * Math.Pow(Theta, -2.0 * i / headDim);
                    double c = Math.Cos(angle), s = sign * Math.Sin(angle);
                    var at = (row * heads + h) * headDim + i;
                    double x1 = x[at], x2 = x[at + half];
                    y[at] = x1 * c - x2 * s;
                    y[at + half] = x2 * c + x1 * s;
                }
        return y;
    }

    [TestCase(1, 1, 1, 2)]
    [TestCase(2, 7, 3, 6)]
    [TestCase(1, 33, 2, 10)]
    [TestCase(1, 65, 1, 4)]
    public void ForwardAndBackwardMatchFloat64InPlace(int batch, int seqLen, int heads, int headDim)
    {
        var n = batch * seqLen * heads * headDim;
        var x = GradCheck.RandomExact(n, 1, 2f);
        var dY = GradCheck.RandomExact(n, 2);
        using var arena = device.Allocate(3L * n + seqLen * headDim, "rope");
        var table = arena.Take((seqLen, headDim / 2, 2));
        table.Upload(RopeTable.Build(seqLen, headDim, Theta));
        var tx = arena.Take((batch, seqLen, heads * headDim));
        var ty = arena.Take((batch, seqLen, heads * headDim));
        var tdY = arena.Take((batch, seqLen, heads * headDim));
        tx.Upload(GradCheck.Narrow(x));
        tdY.Upload(GradCheck.Narrow(dY));

        device.Ops.Rope.Forward(tx, ty, table, headDim);
        Check.Close(ty.ToArray(), Reference(x, seqLen, heads, headDim), 1e-5, 1e-5, "y");
        device.Ops.Rope.Forward(tx, tx, table, headDim);
        Check.Close(tx.ToArray(), Reference(x, seqLen, heads, headDim), 1e-5, 1e-5, "y in place");
        device.Ops.Rope.Backward(tx, tx, table, headDim);
        Check.Close(tx.ToArray(), x, 1e-5, 1e-5, "backward of forward = identity");

        device.Ops.Rope.Backward(tdY, tdY, table, headDim);
        Check.Close(tdY.ToArray(), Reference(dY, seqLen, heads, headDim, -1), 1e-5, 1e-5, "dX in place");
    }

    [TestCase(2, 3, 2, 4)]
    [TestCase(1, 4, 1, 6)]
    public void ReferenceBackwardMatchesFiniteDifferences(int batch, int seqLen, int heads, int headDim)
    {
        var n = batch * seqLen * heads * headDim;
        var x = GradCheck.RandomExact(n, 3);
        var dY = GradCheck.RandomExact(n, 4);
        GradCheck.Matches(Reference(dY, seqLen, heads, headDim, -1), x,
            () => GradCheck.Dot(Reference(x, seqLen, heads, headDim), dY), "dX");
    }

    [Test]
    public void RejectsAFourDimensionalHeadLayout()
    {
        using var arena = device.Allocate(2 * 3 * 2 * 4 + 3 * 4, "rope");
        var table = arena.Take((3, 2, 2));
        var x = arena.Take((2, 3, 2, 4));
        Assert.Throws<ArgumentException>(() => device.Ops.Rope.Forward(x, x, table, 4));
    }
}
