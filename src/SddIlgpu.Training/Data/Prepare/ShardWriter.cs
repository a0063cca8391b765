// Streams tokens into llm.c shards of at most a given number of tokens each. Every shard is written to a
// temporary file whose header is patched with the final count, then renamed: a crash leaves no shard that
// looks whole but is not.
using System.Buffers.Binary;
using System.Security.Cryptography;

namespace SddIlgpu.Training.Data.Prepare;

/// <summary>Writes one split (<c>{prefix}_{split}_{index:D6}.bin</c>) as a sequence of llm.c shards.</summary>
internal sealed class ShardWriter : IDisposable
{
    readonly string dir, prefix, split;
    readonly long shardTokens;
    readonly int vocabSize;
    readonly ShardTokenWidth width;
    readonly List<(string Name, long Tokens, string Sha256)> done = [];
    IncrementalHash? hash;
    readonly byte[] buffer = new byte[1 << 16];
    FileStream? current;
    string? currentTmp;
    long currentCount;
    int used;

    public ShardWriter(string dir, string prefix, string split, int vocabSize, long shardTokens)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(shardTokens, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(shardTokens, (long)int.MaxValue);
        this.dir = dir;
        this.prefix = prefix;
        this.split = split;
        this.vocabSize = vocabSize;
        this.shardTokens = shardTokens;
        width = TokenShard.WidthFor(vocabSize);
    }

    /// <summary>Tokens written so far.</summary>
    public long Count { get; private set; }

    /// <summary>The finished shards (file name, token count, SHA-256 of the token bytes after the header), in order.</summary>
    public IReadOnlyList<(string Name, long Tokens, string Sha256)> Shards => done;

    /// <summary>Appends tokens, opening a new shard whenever one is full.</summary>
    /// <exception cref="DataException">A token is outside [0, vocabSize).</exception>
    public void Write(ReadOnlySpan<int> tokens)
    {
        foreach (var t in tokens)
        {
            if ((uint)t >= (uint)vocabSize)
                throw new DataException($"Token id {t} is outside the vocabulary of {vocabSize}.");
            if (current is null || currentCount == shardTokens)
                Roll();
            if (used + 4 > buffer.Length)
                FlushBuffer();
            if (width == ShardTokenWidth.UInt16)
            {
                BinaryPrimitives.WriteUInt16LittleEndian(buffer.AsSpan(used), (ushort)t);
                used += 2;
            }
            else
            {
                BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(used), (uint)t);
                used += 4;
            }
            currentCount++;
            Count++;
        }
    }

    /// <summary>Closes the last shard. A split that received no token gets one empty shard, so it still exists.</summary>
    public void Complete()
    {
        if (current is null)
            Roll();
        Close();
    }

    void Roll()
    {
        Close();
        var name = $"{prefix}_{split}_{done.Count:D6}.bin";
        currentTmp = Path.Combine(dir, $".{name}.{Environment.ProcessId}.tmp");
        current = new FileStream(currentTmp, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 16);
        current.Write(TokenShard.Header(0, width));
        currentCount = 0;
        hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    }

    void FlushBuffer()
    {
        current!.Write(buffer, 0, used);
        hash!.AppendData(buffer, 0, used);
        used = 0;
    }

    void Close()
    {
        if (current is null)
            return;
        FlushBuffer();
        current.Position = 0;
        current.Write(TokenShard.Header(currentCount, width));
        current.Flush(flushToDisk: true);
        current.Dispose();
        current = null;
        var name = $"{prefix}_{split}_{done.Count:D6}.bin";
        File.Move(currentTmp!, Path.Combine(dir, name), overwrite: true);
        done.Add((name, currentCount, Convert.ToHexStringLower(hash!.GetHashAndReset())));
        hash.Dispose();
        hash = null;
        currentTmp = null;
    }

    /// <summary>Abandons an unfinished shard (its temporary is deleted); finished shards stay.</summary>
    public void Dispose()
    {
        if (current is null)
            return;
        current.Dispose();
        current = null;
        try
        {
            File.Delete(currentTmp!);
        }
        catch (IOException)
        {
        }
    }
}
