// llm.c's shard format, checked against the header spec (dev/data/data_common.py write_datafile) written out
// here byte by byte, and the windows a split of several shards yields.
using System.Buffers.Binary;
using NUnit.Framework;
using SddIlgpu.Training.Data;

namespace SddIlgpu.Tests.Training;

public sealed class TokenShardTests
{
    string dir = null!;

    [SetUp]
    public void MakeDir() => dir = Directory.CreateTempSubdirectory("sdd-shard-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(dir, recursive: true);

    /// <summary>A shard built the way llm.c's write_datafile builds one: 256 int32, then the tokens.</summary>
    static byte[] LlmcShard(int magic, int version, int count, int bytesPerToken, IEnumerable<uint> tokens)
    {
        using var ms = new MemoryStream();
        using var w = new BinaryWriter(ms);
        var header = new int[256];
        header[0] = magic;
        header[1] = version;
        header[2] = count;
        foreach (var h in header)
            w.Write(h);
        foreach (var t in tokens)
        {
            if (bytesPerToken == 2)
                w.Write((ushort)t);
            else
                w.Write(t);
        }
        w.Flush();
        return ms.ToArray();
    }

    [Test]
    public void ReadsAnLlmcUInt16ShardWrittenFromTheSpec()
    {
        var tokens = new uint[] { 50256, 15496, 11, 995, 0, 65535 };
        var path = Path.Combine(dir, "tiny_train_000000.bin");
        File.WriteAllBytes(path, LlmcShard(20240520, 1, tokens.Length, 2, tokens));
        using var shard = new MappedShard(path);
        Assert.That(shard.Width, Is.EqualTo(ShardTokenWidth.UInt16));
        Assert.That(shard.Count, Is.EqualTo(6));
        var read = new int[6];
        shard.Read(0, read);
        Assert.That(read, Is.EqualTo(tokens.Select(t => (int)t).ToArray()));
        var tail = new int[2];
        shard.Read(4, tail);
        Assert.That(tail, Is.EqualTo(new[] { 0, 65535 }));
    }

    [Test]
    public void ReadsAnLlmcUInt32Shard()
    {
        var tokens = new uint[] { 128000, 9906, 1917, 70000 };
        var path = Path.Combine(dir, "llama_val_000000.bin");
        File.WriteAllBytes(path, LlmcShard(20240801, 7, tokens.Length, 4, tokens));
        using var shard = new MappedShard(path);
        Assert.That(shard.Width, Is.EqualTo(ShardTokenWidth.UInt32));
        var read = new int[4];
        shard.Read(0, read);
        Assert.That(read, Is.EqualTo(new[] { 128000, 9906, 1917, 70000 }));
    }

    [TestCase(65, 2, 20240520, 1)]
    [TestCase(50257, 2, 20240520, 1)]
    [TestCase(65536, 2, 20240520, 1)]
    [TestCase(65537, 4, 20240801, 7)]
    public void WritesEveryHeaderFieldAndToken(int vocab, int bytesPerToken, int magic, int version)
    {
        var tokens = Enumerable.Range(0, 300).Select(i => (int)((i * 7919L) % vocab)).ToArray();
        tokens[^1] = vocab - 1;
        var path = Path.Combine(dir, "ours_train_000000.bin");
        TokenShard.Write(path, tokens, vocab);
        var bytes = File.ReadAllBytes(path);
        Assert.That(bytes.Length, Is.EqualTo(1024 + 300 * bytesPerToken));
        Assert.That(BinaryPrimitives.ReadInt32LittleEndian(bytes), Is.EqualTo(magic));
        Assert.That(BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(4)), Is.EqualTo(version));
        Assert.That(BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(8)), Is.EqualTo(300));
        for (var i = 3; i < 256; i++)
            Assert.That(BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(4 * i)), Is.Zero, $"reserved header word {i}");
        for (var i = 0; i < tokens.Length; i++)
        {
            var at = bytes.AsSpan(1024 + i * bytesPerToken);
            var v = bytesPerToken == 2 ? BinaryPrimitives.ReadUInt16LittleEndian(at) : BinaryPrimitives.ReadUInt32LittleEndian(at);
            Assert.That(v, Is.EqualTo((uint)tokens[i]), $"token {i}");
        }
        Assert.That(Directory.GetFiles(dir), Has.Length.EqualTo(1), "no temporary left beside the shard");
    }

    [Test]
    public void RefusesATokenOutsideTheVocabulary() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => TokenShard.Write(Path.Combine(dir, "x.bin"), [1, 65], 65));

    [TestCase(20240521, 1, 4, 4, "magic is 20240521")]
    [TestCase(20240520, 2, 4, 4, "needs version 1")]
    [TestCase(20240801, 1, 4, 4, "needs version 7")]
    [TestCase(20240520, 1, -1, 4, "negative")]
    [TestCase(20240520, 1, 5, 4, "promises 5 tokens")]
    [TestCase(20240520, 1, 3, 4, "promises 3 tokens")]
    public void RefusesABadHeader(int magic, int version, int count, int actual, string expected)
    {
        var path = Path.Combine(dir, "bad_train_000000.bin");
        File.WriteAllBytes(path, LlmcShard(magic, version, count, 2, Enumerable.Repeat(7u, actual)));
        var e = Assert.Throws<DataException>(() => TokenShard.ReadHeader(path))!;
        Assert.That(e.Message, Does.Contain(expected).And.Contain(path).And.Contain("sdd prepare"));
    }

    [Test]
    public void RefusesATruncatedHeaderAndAMissingFile()
    {
        var path = Path.Combine(dir, "short.bin");
        File.WriteAllBytes(path, new byte[100]);
        Assert.That(Assert.Throws<DataException>(() => TokenShard.ReadHeader(path))!.Message, Does.Contain("fewer than the 1024-byte header"));
        Assert.That(Assert.Throws<DataException>(() => TokenShard.ReadHeader(Path.Combine(dir, "none.bin")))!.Message, Does.Contain("does not exist"));
    }

    [Test]
    public void WindowsOfSeveralShardsMatchTheShardsReadOneByOne()
    {
        // Shard sizes 10, 3 (shorter than a window: no window), 0 (empty), 9; seq_len 4 → 6 + 0 + 0 + 5 windows.
        int[][] parts = [[.. Enumerable.Range(0, 10)], [100, 101, 102], [], [.. Enumerable.Range(200, 9)]];
        var paths = parts.Select((p, i) => Path.Combine(dir, $"s_train_{i:D6}.bin")).ToArray();
        for (var i = 0; i < parts.Length; i++)
            TokenShard.Write(paths[i], parts[i], 256);
        using var split = new ShardTokenSplit(paths, dir);
        Assert.That(split.Count, Is.EqualTo(22));
        Assert.That(split.WindowCount(4), Is.EqualTo(11));
        var expected = new List<int[]>();
        foreach (var p in parts)
            for (var s = 0; s + 5 <= p.Length; s++)
                expected.Add(p[s..(s + 5)]);
        var window = new int[5];
        for (var w = 0; w < 11; w++)
        {
            split.ReadWindow(w, window, 256);
            Assert.That(window, Is.EqualTo(expected[w]), $"window {w}");
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => split.ReadWindow(11, window, 256));
    }

    [Test]
    public void AnIdOutsideTheModelsVocabularyIsADataError()
    {
        var path = Path.Combine(dir, "v_train_000000.bin");
        TokenShard.Write(path, [1, 2, 300, 4, 5], 50257);
        using var split = new ShardTokenSplit([path], dir);
        var e = Assert.Throws<DataException>(() => split.ReadWindow(0, new int[4], 256))!;
        Assert.That(e.Message, Does.Contain("token id 300").And.Contain("vocabulary of 256"));
    }

    [Test]
    public void ShardBatchesEqualInMemoryBatchesOnOneShard()
    {
        var tokens = Enumerable.Range(0, 5000).Select(i => (i * 31) % 65).ToArray();
        var path = Path.Combine(dir, "one_train_000000.bin");
        TokenShard.Write(path, tokens, 65);
        using var split = new ShardTokenSplit([path], dir);
        var mapped = new BatchSampler(split, 4, 16, 9, "train", 65);
        var memory = new BatchSampler(new ArraySegment<int>(tokens), 4, 16, 9, "train", 65);
        float[] x1 = new float[64], y1 = new float[64], x2 = new float[64], y2 = new float[64];
        for (var step = 0; step < 5; step++)
        {
            mapped.Next(x1, y1);
            memory.Next(x2, y2);
            Assert.That(x1, Is.EqualTo(x2));
            Assert.That(y1, Is.EqualTo(y2));
        }
    }
}
