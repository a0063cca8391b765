using NUnit.Framework;
using SddIlgpu.Tensors;
using SddIlgpu.Tests.Support;

namespace SddIlgpu.Tests.Tensors;

[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.All))]
public sealed class ReductionTests(string deviceName)
{
    Device device = null!;

    [OneTimeSetUp]
    public void Open() => device = TestDevices.Get(deviceName);

    [TestCase(1)]
    [TestCase(7)]
    [TestCase(65)]
    [TestCase(100_003)]
    public void SumAndSumOfSquaresMatchFloat64AndRepeatBitForBit(int n)
    {
        using var arena = device.Allocate(n + 4, "reduce");
        var x = arena.Take(n);
        var output = arena.Take(4);
        var h = Check.Random(n, n);
        x.Upload(h);
        device.Ops.Reduction.Sum(x, output, 1);
        device.Ops.Reduction.SumSquares(x, output, 2);
        var first = output.ToArray();
        Check.Close(first.AsSpan(1, 2), [h.Sum(v => (double)v), h.Sum(v => (double)v * v)], 1e-4, 1e-5, "sum, sum of squares");

        device.Ops.Reduction.Sum(x, output, 1);
        device.Ops.Reduction.SumSquares(x, output, 2);
        Check.BitIdentical(output.ToArray(), first, "repeat");
    }
}
