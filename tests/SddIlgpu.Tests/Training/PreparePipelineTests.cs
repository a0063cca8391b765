// The machinery under `sdd prepare`: the ordered parallel map keeps source order, bounded memory and the
// earliest error whatever the schedule, and a split's tail moves to validation with every shard's header and
// SHA-256 redone, wherever the cut falls.
using System.Security.Cryptography;
using NUnit.Framework;
using SddIlgpu.Training.Data;
using SddIlgpu.Training.Data.Prepare;

namespace SddIlgpu.Tests.Training;

public sealed class PreparePipelineTests
{
    static void Jitter(int i) => Thread.Sleep((i * 7919) % 5 == 0 ? 2 : 0);

    [TestCase(1, 1)]
    [TestCase(3, 6)]
    [TestCase(4, 4)]
    public void ResultsComeInSourceOrderWithABoundedWindow(int threads, int window)
    {
        var read = 0;
        IEnumerable<int> Source()
        {
            for (var i = 0; i < 400; i++)
            {
                Interlocked.Increment(ref read);
                yield return i;
            }
        }
        var got = new List<int>();
        var most = 0;
        foreach (var (item, result) in OrderedParallel.Select(Source(), i => { Jitter(i); return i * 3 + 1; }, threads, window, default))
        {
            most = Math.Max(most, Volatile.Read(ref read) - got.Count);
            Assert.That(result, Is.EqualTo(item * 3 + 1));
            got.Add(item);
        }
        Assert.That(got, Is.EqualTo(Enumerable.Range(0, 400)));
        Assert.That(most, Is.LessThanOrEqualTo(window), "never more items read than the window holds");
    }

    [Test]
    public void TheEarliestFailingItemIsTheErrorEvenWhenALaterOneFailsFirst()
    {
        var yielded = 0;
        var e = Assert.Throws<InvalidDataException>(() =>
        {
            foreach (var _ in OrderedParallel.Select(Enumerable.Range(0, 100), i =>
            {
                if (i == 37)
                {
                    Thread.Sleep(100); // item 60 fails long before item 37 does
                    throw new InvalidDataException("item 37");
                }
                return i == 60 ? throw new InvalidDataException("item 60") : i;
            }, 3, 32, default))
                yielded++;
        });
        Assert.That(e!.Message, Is.EqualTo("item 37"), "rethrown unchanged, not wrapped in an AggregateException");
        Assert.That(yielded, Is.EqualTo(37));
    }

    [Test]
    public void ASourceErrorComesAfterEveryItemReadBeforeIt()
    {
        IEnumerable<int> Source()
        {
            for (var i = 0; i < 10; i++)
                yield return i;
            throw new DataException("line 11 is not valid JSON");
        }
        var got = new List<int>();
        var e = Assert.Throws<DataException>(() =>
        {
            foreach (var (_, r) in OrderedParallel.Select(Source(), i => { Jitter(i); return i; }, 2, 4, default))
                got.Add(r);
        });
        Assert.That(e!.Message, Is.EqualTo("line 11 is not valid JSON"));
        Assert.That(got, Is.EqualTo(Enumerable.Range(0, 10)));
    }

    [Test]
    public void StoppingEarlyDisposesTheSourceAndReturns()
    {
        var disposed = new ManualResetEventSlim();
        IEnumerable<int> Endless()
        {
            try
            {
                for (var i = 0; ; i++)
                    yield return i;
            }
            finally
            {
                disposed.Set();
            }
        }
        var task = Task.Run(() => OrderedParallel.Select(Endless(), i => i, 2, 8, default).Take(5).Sum(x => x.Result));
        Assert.That(task.Wait(TimeSpan.FromSeconds(30)), Is.True, "the reader and workers stop when the caller stops");
        Assert.That(task.Result, Is.EqualTo(0 + 1 + 2 + 3 + 4));
        Assert.That(disposed.IsSet, Is.True, "the source's enumerator is disposed before Select returns");
    }

    [Test]
    public void CancellationStopsTheStream()
    {
        using var cancel = new CancellationTokenSource();
        var got = 0;
        Assert.Throws<OperationCanceledException>(() =>
        {
            foreach (var _ in OrderedParallel.Select(Enumerable.Range(0, 1_000_000), i => i, 2, 8, cancel.Token))
                if (++got == 50)
                    cancel.Cancel();
        });
        Assert.That(got, Is.EqualTo(50));
    }

    [TestCase(1000, 0)]
    [TestCase(1000, 128)]
    [TestCase(1000, 500)]
    [TestCase(1000, 999)]
    [TestCase(1000, 1000)]
    [TestCase(70_000, 384)]
    [TestCase(70_000, 129)]
    public void MovingTheTailLeavesExactShardsOnBothSides(int vocab, long keep)
    {
        // 1,000 tokens in shards of 128: cuts at the start, on a shard boundary, inside a shard, one before the
        // end and at the end; uint16 (vocabulary 1,000) and uint32 (70,000) layouts.
        var dir = Directory.CreateTempSubdirectory("sdd-tail-").FullName;
        try
        {
            var tokens = Enumerable.Range(0, 1000).Select(i => (i * 7919 + 11) % vocab).ToArray();
            using var train = new ShardWriter(dir, "t", "train", vocab, 128);
            using var val = new ShardWriter(dir, "t", "val", vocab, 128);
            foreach (var part in tokens.Chunk(77))
                train.Write(part);
            train.Complete();
            train.MoveTailTo(keep, val);
            val.Complete();

            Assert.That(train.Count, Is.EqualTo(keep));
            Assert.That(val.Count, Is.EqualTo(1000 - keep));
            Assert.That(train.Shards, Has.Count.EqualTo(Math.Max(1, (int)Math.Ceiling(keep / 128.0))));
            Assert.That(Read(dir, train), Is.EqualTo(tokens[..(int)keep]));
            Assert.That(Read(dir, val), Is.EqualTo(tokens[(int)keep..]));
            var names = train.Shards.Concat(val.Shards).Select(s => s.Name).Order();
            Assert.That(Directory.GetFiles(dir).Select(Path.GetFileName).Order(), Is.EqualTo(names), "no stray shard or temporary");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    static int[] Read(string dir, ShardWriter split)
    {
        var all = new List<int>();
        foreach (var (name, count, sha) in split.Shards)
        {
            var path = Path.Combine(dir, name);
            Assert.That(TokenShard.ReadHeader(path).Count, Is.EqualTo(count), $"{name}: header count");
            var body = File.ReadAllBytes(path)[TokenShard.HeaderBytes..];
            Assert.That(Convert.ToHexStringLower(SHA256.HashData(body)), Is.EqualTo(sha), $"{name}: SHA-256 of its tokens");
            using var shard = new MappedShard(path);
            var t = new int[shard.Count];
            shard.Read(0, t);
            all.AddRange(t);
        }
        return [.. all];
    }
}
