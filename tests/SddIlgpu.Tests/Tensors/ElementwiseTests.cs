using NUnit.Framework;
using SddIlgpu.Tensors;
using SddIlgpu.Tests.Support;

namespace SddIlgpu.Tests.Tensors;

[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.All))]
public sealed class ElementwiseTests(string deviceName)
{
    Device device = null!;

    [OneTimeSetUp]
    public void Open() => device = TestDevices.Get(deviceName);

    [TestCase(1)]
    [TestCase(33)]
    [TestCase(1025)]
    public void AddScaleAxpyFillCopyMatchTheReference(int n)
    {
        using var arena = device.Allocate(4L * n, "elementwise");
        var a = arena.Take(n);
        var b = arena.Take(n);
        var y = arena.Take(n);
        var z = arena.Take(n);
        var ha = Check.Random(n, 1);
        var hb = Check.Random(n, 2);
        a.Upload(ha);
        b.Upload(hb);

        device.Ops.Elementwise.Add(a, b, y);
        Check.Close(y.ToArray(), ha.Zip(hb, (p, q) => (double)p + q).ToArray(), 1e-6, 1e-6, "add");

        device.Ops.Elementwise.Scale(a, -2.5f, y);
        Check.Close(y.ToArray(), ha.Select(p => -2.5 * p).ToArray(), 1e-6, 1e-6, "scale");

        device.Ops.Elementwise.Copy(b, z);
        device.Ops.Elementwise.Axpy(0.5f, a, z);
        Check.Close(z.ToArray(), ha.Zip(hb, (p, q) => q + 0.5 * p).ToArray(), 1e-6, 1e-6, "axpy");

        device.Ops.Elementwise.Fill(z, 3f);
        Assert.That(z.ToArray(), Is.All.EqualTo(3f));
    }

    [Test]
    public void AMillionElementAxpyIsOneBoundedLaunch()
    {
        const int n = 1 << 20;
        using var arena = device.Allocate(2L * n, "axpy");
        var x = arena.Take(n);
        var y = arena.Take(n);
        device.Ops.Elementwise.Fill(x, 1f);
        device.Ops.Elementwise.Fill(y, 2f);
        var before = device.Counters.Snapshot();
        device.Ops.Elementwise.Axpy(3f, x, y);
        device.Synchronize();
        Assert.That((device.Counters.Snapshot() - before).Launches, Is.EqualTo(1));
        var h = y.ToArray();
        Assert.That(h[0], Is.EqualTo(5f));
        Assert.That(h[n - 1], Is.EqualTo(5f));
    }

    [Test]
    public void MismatchedLengthsAreRejectedWithBothShapes()
    {
        using var arena = device.Allocate(10, "bad");
        var a = arena.Take(4, "a");
        var b = arena.Take(5, "b");
        var e = Assert.Throws<ArgumentException>(() => device.Ops.Elementwise.Add(a, b, a))!;
        Assert.That(e.Message, Does.Contain("(4)").And.Contain("(5)"));
    }
}
