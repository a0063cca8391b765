// RMS norm over groups against a float64 reference (spec §3 RMSN_g): forward, backward (dX overwritten,
// dGain accumulated), the reference backward against finite differences, aliasing and determinism.
using NUnit.Framework;
using SddIlgpu.Tensors;
using SddIlgpu.Tests.Support;

namespace SddIlgpu.Tests.Tensors;

[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.All))]
public sealed class NormTests(string deviceName)
{
    const double Eps = 1e-5;
    Device device = null!;

    [OneTimeSetUp]
    public void Open() => device = TestDevices.Wide(deviceName); // launches 256-thread groups

    /// <summary>y = g·x·rstd per group of n; gain null = 1.</summary>
    static (double[] Y, double[] Rstd) Reference(double[] x, double[]? gain, int n)
    {
        var y = new double[x.Length];
        var rstd = new double[x.Length / n];
        for (var grp = 0; grp < rstd.Length; grp++)
        {
            var ss = 0.0;
            for (var i = 0; i < n; i++)
                ss += x[grp * n + i] * x[grp * n + i];
            rstd[grp] = 1 / Math.Sqrt(ss / n + Eps);
            for (var i = 0; i < n; i++)
                y[grp * n + i] = (gain?[i] ?? 1) * x[grp * n + i] * rstd[grp];
        }
        return (y, rstd);
    }

    static (double[] DX, double[] DGain) ReferenceBackward(double[] dY, double[] x, double[]? gain, int n)
    {
        var (_, rstd) = Reference(x, gain, n);
        var dX = new double[x.Length];
        var dGain = new double[n];
        for (var grp = 0; grp < rstd.Length; grp++)
        {
            double r = rstd[grp], dot = 0;
            for (var i = 0; i < n; i++)
                dot += (gain?[i] ?? 1) * dY[grp * n + i] * x[grp * n + i];
            for (var i = 0; i < n; i++)
            {
                var k = grp * n + i;
                dX[k] = r * ((gain?[i] ?? 1) * dY[k] - x[k] * r * r * dot / n);
                dGain[i] += dY[k] * x[k] * r;
            }
        }
        return (dX, dGain);
    }

    [TestCase(1, 7, 7, true)]
    [TestCase(7, 33, 33, true)]
    [TestCase(3, 65, 65, false)]
    [TestCase(7, 39, 13, true)]
    [TestCase(5, 65, 13, false)]
    public void ForwardMatchesFloat64(int rows, int width, int groupSize, bool withGain)
    {
        var x = GradCheck.RandomExact(rows * width, 1, 3f);
        var gain = withGain ? GradCheck.RandomExact(groupSize, 2) : null;
        using var arena = device.Allocate(2L * rows * width + rows * width / groupSize + groupSize, "norm");
        var tx = Upload(arena, x, (rows, width));
        var tg = gain is null ? null : Upload(arena, gain, groupSize);
        var ty = arena.Take((rows, width));
        var tr = arena.Take(rows * width / groupSize);

        device.Ops.Norm.Forward(tx, tg, ty, tr, groupSize, (float)Eps);

        var (y, rstd) = Reference(x, gain, groupSize);
        Check.Close(ty.ToArray(), y, 1e-5, 1e-5, "y");
        Check.Close(tr.ToArray(), rstd, 1e-6, 1e-5, "rstd");

        device.Ops.Norm.Forward(tx, tg, tx, tr, groupSize, (float)Eps);
        Check.Close(tx.ToArray(), y, 1e-5, 1e-5, "y aliasing x");
    }

    [TestCase(1, 7, 7, true)]
    [TestCase(7, 33, 33, true)]
    [TestCase(3, 65, 65, false)]
    [TestCase(7, 39, 13, true)]
    [TestCase(33, 10, 5, true)]
    [TestCase(300, 8, 4, true)]
    public void BackwardMatchesFloat64AndAccumulatesGain(int rows, int width, int groupSize, bool withGain)
    {
        var x = GradCheck.RandomExact(rows * width, 3, 2f);
        var dY = GradCheck.RandomExact(rows * width, 4);
        var gain = withGain ? GradCheck.RandomExact(groupSize, 5) : null;
        var dGainBefore = GradCheck.RandomExact(groupSize, 6);
        using var arena = device.Allocate(3L * rows * width + rows * width / groupSize + 2 * groupSize, "norm");
        var tx = Upload(arena, x, (rows, width));
        var tdY = Upload(arena, dY, (rows, width));
        var tg = gain is null ? null : Upload(arena, gain, groupSize);
        var tdGain = gain is null ? null : Upload(arena, dGainBefore, groupSize);
        var ty = arena.Take((rows, width));
        var tr = arena.Take(rows * width / groupSize);
        device.Ops.Norm.Forward(tx, tg, ty, tr, groupSize, (float)Eps);

        // dX aliases dY: the contract allows it, and the dGain sum must still see the original dY.
        device.Ops.Norm.Backward(tdY, tx, tg, tr, tdY, tdGain, groupSize);

        var (dX, dGain) = ReferenceBackward(dY, x, gain, groupSize);
        Check.Close(tdY.ToArray(), dX, 1e-5, 1e-4, "dX");
        if (tdGain is not null)
            Check.Close(tdGain.ToArray(), dGain.Select((d, i) => d + dGainBefore[i]).ToArray(), 1e-4, 1e-5, "dGain += ");
    }

    [TestCase(2, 6, 3, true)]
    [TestCase(3, 5, 5, false)]
    public void ReferenceBackwardMatchesFiniteDifferences(int rows, int width, int groupSize, bool withGain)
    {
        var x = GradCheck.RandomExact(rows * width, 7);
        var dY = GradCheck.RandomExact(rows * width, 8);
        var gain = withGain ? GradCheck.RandomExact(groupSize, 9) : null;
        var (dX, dGain) = ReferenceBackward(dY, x, gain, groupSize);
        double Loss() => GradCheck.Dot(Reference(x, gain, groupSize).Y, dY);
        GradCheck.Matches(dX, x, Loss, "dX");
        if (gain is not null)
            GradCheck.Matches(dGain, gain, Loss, "dGain");
    }

    [Test]
    public void GainGradientRepeatsBitForBit()
    {
        const int rows = 65, width = 33;
        using var arena = device.Allocate(4L * rows * width + rows + 2 * width, "norm");
        var tx = Upload(arena, GradCheck.RandomExact(rows * width, 10, 5f), (rows, width));
        var tdY = Upload(arena, GradCheck.RandomExact(rows * width, 11), (rows, width));
        var tg = Upload(arena, GradCheck.RandomExact(width, 12), width);
        var tdX = arena.Take((rows, width));
        var tr = arena.Take(rows);
        var tdGain = arena.Take(width);
        var ty = arena.Take((rows, width));
        device.Ops.Norm.Forward(tx, tg, ty, tr, width, (float)Eps);
        device.Ops.Norm.Backward(tdY, tx, tg, tr, tdX, tdGain, width);
        var first = tdGain.ToArray();
        device.Ops.Elementwise.Fill(tdGain, 0f);
        device.Ops.Norm.Backward(tdY, tx, tg, tr, tdX, tdGain, width);
        Check.BitIdentical(tdGain.ToArray(), first, "dGain");
    }

    /// <summary>
    /// The row kernels at the GPU group (256 threads: team widths 2 to 256) and at 2 threads (groups loop over many
    /// teams), on every kernel device including the CPU accelerator.
    /// </summary>
    [TestCase(256)]
    [TestCase(2)]
    public void CooperativeGroupSizesMatchFloat64AndRepeat(int threads)
    {
        if (device.Kind == BackendKind.Cpu)
            Assert.Ignore("The managed cpu path has its own norms (ManagedOpsTests).");
        using (CooperativeLaunch.Threads(device, threads))
        {
            ForwardMatchesFloat64(7, 39, 13, true);
            ForwardMatchesFloat64(3, 65, 65, false);
            ForwardMatchesFloat64(2, 3000, 3000, true);
            BackwardMatchesFloat64AndAccumulatesGain(33, 10, 5, true);
            BackwardMatchesFloat64AndAccumulatesGain(2, 2100, 2100, true);
            BackwardMatchesFloat64AndAccumulatesGain(3, 65, 65, false);
            GainGradientRepeatsBitForBit();
        }
    }

    static Tensor Upload(Arena arena, double[] data, Shape shape)
    {
        var t = arena.Take(shape);
        t.Upload(GradCheck.Narrow(data));
        return t;
    }
}
