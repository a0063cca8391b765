// Results must not depend on timing (issue 10 §6). Upload/Download round trips while another thread keeps
// compacting the GC heap (a busy machine does the same by chance), and managed ops whose pool helpers are
// delayed at random, each compared bit for bit with a quiet run.
using NUnit.Framework;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;
using SddIlgpu.Tests.Support;

namespace SddIlgpu.Tests.Tensors;

[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.All))]
public sealed class TransferRaceTests(string deviceName)
{
    Device device = null!;

    [OneTimeSetUp]
    public void Open() => device = TestDevices.Get(deviceName);

    /// <summary>
    /// Fresh small host arrays live in gen 0, where every compacting collection may move them. Upload and
    /// Download must pin them for the whole copy: a copy through a raw pointer taken before a collection
    /// moved the array reads or writes the array's old place (Download then returns the zeros of
    /// <c>new float[n]</c>, the symptom seen under load).
    /// </summary>
    [Test]
    public void RoundTripsAreExactWhileTheHeapIsCompacted()
    {
        const int n = 1024, rounds = 3000;
        using var arena = device.Allocate(n, "transfer");
        var t = arena.Take(n, "x");
        using var stop = new CancellationTokenSource();
        var collections = 0;
        var compactor = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                GC.Collect(0, GCCollectionMode.Forced, blocking: true, compacting: true);
                collections++;
            }
        }) { IsBackground = true, Name = "test-gc-compactor" };
        compactor.Start();
        try
        {
            for (var round = 0; round < rounds; round++)
            {
                var host = Check.Random(n, round);
                t.Upload(host);
                var back = t.ToArray();
                Check.BitIdentical(back, host, $"round trip {round} of {rounds} on {device.Name}");
            }
        }
        finally
        {
            stop.Cancel();
            compactor.Join();
        }
        Assert.That(collections, Is.GreaterThan(0), "the compacting thread never ran: the test proved nothing");
    }
}
