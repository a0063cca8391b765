// Results must not depend on timing (issue 10 §6): Upload/Download round trips while another thread keeps
// compacting the GC heap, which a busy machine does by chance at the worst moment.
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
        int collections;
        using (var load = new Contention(spinners: 0, compactGc: true))
        {
            // A quiet machine gives the compacting thread whole cores, and each round then waits on many collections:
            // the rounds stop after 15 s (at least 200 rounds), so the suite's time does not depend on the load either. A
            // fast device can finish all rounds before the first collection: then they go on until one has run (30 s at most).
            var clock = System.Diagnostics.Stopwatch.StartNew();
            for (var round = 0; (round < rounds && (round < 200 || clock.Elapsed.TotalSeconds < 15))
                 || (load.Collections == 0 && clock.Elapsed.TotalSeconds < 30); round++)
            {
                var host = Check.Random(n, round);
                t.Upload(host);
                var back = t.ToArray();
                Check.BitIdentical(back, host, $"round trip {round} of {rounds} on {device.Name}");
            }
            collections = load.Collections;
        }
        Assert.That(collections, Is.GreaterThan(0), "the compacting thread never ran: the test proved nothing");
    }
}
