using NUnit.Framework;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Random;
using SddIlgpu.Tests.Support;

namespace SddIlgpu.Tests.Tensors;

public sealed class DeviceTests
{
    [Test]
    public void UnknownDeviceNamesWhatIsAvailable()
    {
        var e = Assert.Throws<DeviceNotFoundException>(() => Device.Open("tpu"))!;
        Assert.That(e.Message, Does.Contain("Unknown device 'tpu'").And.Contain("ilgpu-cpu").And.Contain("cpu"));
    }

    [Test]
    public void BadIndexIsRejected()
    {
        Assert.Throws<DeviceNotFoundException>(() => Device.Open("cpu:3"));
        Assert.Throws<DeviceNotFoundException>(() => Device.Open("cuda:x"));
    }

    [Test]
    public void ListingAlwaysHasBothCpuDevices()
    {
        var names = Device.List().Select(d => d.Name).ToList();
        Assert.That(names, Does.Contain("cpu").And.Contain("ilgpu-cpu"));
    }

    /// <summary>
    /// A big host arena asks Linux for transparent huge pages on its whole 2 MiB pages (and is zeroed and usable as
    /// any other); a small one, or one with huge pages turned off, asks for none.
    /// </summary>
    [Test]
    public void BigHostArenasAskForHugePages()
    {
        if (!OperatingSystem.IsLinux() || !Directory.Exists("/sys/kernel/mm/transparent_hugepage"))
            Assert.Ignore("Transparent huge pages are a Linux feature this kernel lacks.");
        var device = TestDevices.Get("cpu");
        const long floats = 5L << 20; // 20 MiB: at least 8 whole huge pages however the buffer is aligned
        using (var big = device.Allocate(floats, "big"))
        {
            Assert.That(big.HugePageBytes, Is.InRange(16L << 20, 20L << 20));
            var t = big.Take(checked((int)floats), "x");
            Assert.That(t.HostSpan().ToArray().All(v => v == 0f), Is.True, "zeroed");
            t.HostSpan()[(int)floats - 1] = 3f;
            Assert.That(t.HostSpan()[(int)floats - 1], Is.EqualTo(3f));
        }
        using (var small = device.Allocate((1L << 20) - 1, "small")) // under 4 MiB
            Assert.That(small.HugePageBytes, Is.Zero);
        Arena.HugePagesEnabled = false;
        try
        {
            using var off = device.Allocate(floats, "off");
            Assert.That(off.HugePageBytes, Is.Zero);
        }
        finally
        {
            Arena.HugePagesEnabled = true;
        }
    }

    /// <summary>
    /// Host arenas start on a 64-byte cache line whatever their size (glibc hands out large blocks 16 bytes past a page
    /// boundary), hold exactly their capacity, zeroed, and keep their tensors' data where they are.
    /// </summary>
    [TestCase("cpu")]
    [TestCase("ilgpu-cpu")]
    public unsafe void HostArenasStartOnACacheLine(string name)
    {
        var device = TestDevices.Get(name);
        foreach (var floats in new long[] { 1, 100, 10_000, 1 << 20, 3_000_001 })
        {
            using var arena = device.Allocate(floats, "aligned");
            var t = arena.Take(checked((int)floats), "x");
            fixed (float* p = t.HostSpan())
                Assert.That((long)p % 64, Is.EqualTo(0L), $"{floats} floats");
            Assert.That(arena.Capacity, Is.EqualTo(floats));
            Assert.That(t.HostSpan().ToArray().All(v => v == 0f), Is.True, "zeroed");
            var data = Enumerable.Range(0, (int)floats).Select(i => (float)i).ToArray();
            t.Upload(data);
            Assert.That(t.ToArray(), Is.EqualTo(data), "upload and download through the aligned view");
        }
    }

    [Test]
    public void ShapeMismatchSaysExpectedAndActual()
    {
        var device = TestDevices.Get("ilgpu-cpu");
        using var arena = device.Allocate(12, "shape");
        var t = arena.Take((3, 4), "x");
        var e = Assert.Throws<ArgumentException>(() => t.Expect((4, 3), "Linear input"))!;
        Assert.That(e.Message, Does.Contain("expected shape (4, 3), got (3, 4)"));
        Assert.Throws<ArgumentException>(() => t.Upload(new float[5]));
        Assert.Throws<ArgumentException>(() => t.Reshape(5));
    }

    [Test]
    public void DisposedArenaIsAClearErrorAndDisposeIsIdempotent()
    {
        var device = TestDevices.Get("ilgpu-cpu");
        var arena = device.Allocate(8, "gone");
        var t = arena.Take(8, "x");
        arena.Dispose();
        arena.Dispose();
        var e = Assert.Throws<ObjectDisposedException>(() => t.ToArray())!;
        Assert.That(e.Message, Does.Contain("gone"));
        Assert.Throws<ObjectDisposedException>(() => arena.Take(1));
    }

    [Test]
    public void ArenaOverflowNamesTheArena()
    {
        var device = TestDevices.Get("ilgpu-cpu");
        using var arena = device.Allocate(8, "small");
        arena.Take(6);
        var e = Assert.Throws<InvalidOperationException>(() => arena.Take(3, "w"))!;
        Assert.That(e.Message, Does.Contain("small").And.Contain("w"));
    }

    [TestCase("ilgpu-cpu")]
    [TestCase("cpu")]
    [TestCase("cuda")]
    [TestCase("opencl")]
    public void DeviceUniformDrawsEqualHostDrawsBitForBit(string name)
    {
        var device = TestDevices.Get(name);
        using var arena = device.Allocate(1000, "rng");
        var y = arena.Take(1000);
        device.Ops.Random.FillUniform(y, 42, 7);
        var host = new float[1000];
        Philox.FillUniform(host, 42, 7);
        Check.BitIdentical(y.ToArray(), host, "philox uniform");
        Assert.That(host.Min(), Is.GreaterThanOrEqualTo(0f));
        Assert.That(host.Max(), Is.LessThan(1f));
        Assert.That(host.Average(), Is.EqualTo(0.5).Within(0.05));
    }
}
