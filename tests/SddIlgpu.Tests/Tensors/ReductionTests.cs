using NUnit.Framework;
using SddIlgpu.Tensors;
using SddIlgpu.Tests.Support;

namespace SddIlgpu.Tests.Tensors;

[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.All))]
public sealed class ReductionTests(string deviceName)
{
    Device device = null!;

    [OneTimeSetUp]
    public void Open() => device = TestDevices.Wide(deviceName); // launches 256-thread groups

    [TestCase(1)]
    [TestCase(7)]
    [TestCase(65)]
    [TestCase(100_003)]
    public void SumAndSumOfSquaresMatchFloat64AndRepeatBitForBit(int n) => SumsMatchAndRepeat(n);

    /// <summary>
    /// The kernels' own launch shapes on every kernel device: 256 threads (the GPU group, a 9-level tree), 2 and 1
    /// (sizes past Partials·G, so lanes loop), at sizes the CPU accelerator runs quickly.
    /// </summary>
    [TestCase(256, 1_000)]
    [TestCase(256, 3)]
    [TestCase(2, 5_001)]
    [TestCase(1, 2_000)]
    public void EveryCooperativeGroupSizeMatchesFloat64AndRepeats(int threads, int n)
    {
        if (device.Kind == BackendKind.Cpu)
            Assert.Ignore("The managed cpu path has its own reduction (ManagedOpsTests).");
        using (CooperativeLaunch.Threads(device, threads))
            SumsMatchAndRepeat(n);
    }

    void SumsMatchAndRepeat(int n)
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
        Assert.That(first[0], Is.Zero, "output[0] untouched");
        Assert.That(first[3], Is.Zero, "output[3] untouched");

        device.Ops.Reduction.Sum(x, output, 1);
        device.Ops.Reduction.SumSquares(x, output, 2);
        Check.BitIdentical(output.ToArray(), first, "repeat");
    }
}
