// Streams tokens into llm.c shards of at most a given number of tokens each. Every shard is written to a
// temporary file whose header is patched with the final count, then renamed: a crash leaves no shard that
// looks whole but is not.
using System.Buffers.Binary;
using System.Runtime.Intrinsics;
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
    bool completed;

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

    /// <summary>A token id to watch for (<see cref="SawWatched"/>), e.g. newline; -1 for none.</summary>
    public int Watch { get; init; } = -1;

    /// <summary>Whether <see cref="Watch"/> was written.</summary>
    public bool SawWatched => FirstWatchedAt >= 0;

    /// <summary>The first token written, or -1.</summary>
    public int First { get; private set; } = -1;

    /// <summary>Tokens written so far.</summary>
    public long Count { get; private set; }

    /// <summary>The finished shards (file name, token count, SHA-256 of the token bytes after the header), in order.</summary>
    public IReadOnlyList<(string Name, long Tokens, string Sha256)> Shards => done;

    /// <summary>Position of the first <see cref="Watch"/> token written, or -1.</summary>
    public long FirstWatchedAt { get; private set; } = -1;

    /// <summary>Appends tokens, opening a new shard whenever one is full.</summary>
    /// <exception cref="DataException">A token is outside [0, vocabSize).</exception>
    public void Write(ReadOnlySpan<int> tokens)
    {
        if (completed)
            throw new InvalidOperationException("This split is complete: nothing more can be written.");
        // The span is checked, scanned and narrowed in runs that fit both the shard and the buffer: a few
        // vectorised passes per run instead of several branches per token (250 M tokens per GB of GPT-2 text).
        var bytesPerToken = (int)width;
        while (!tokens.IsEmpty)
        {
            if (current is null || currentCount == shardTokens)
                Roll();
            var room = (int)Math.Min(shardTokens - currentCount, (buffer.Length - used) / bytesPerToken);
            if (room == 0)
            {
                FlushBuffer();
                continue;
            }
            var run = tokens[..Math.Min(room, tokens.Length)];
            if (run.IndexOfAnyExceptInRange(0, vocabSize - 1) is var bad and >= 0)
                throw new DataException($"Token id {run[bad]} is outside the vocabulary of {vocabSize}.");
            if (Count == 0)
                First = run[0];
            if (FirstWatchedAt < 0 && Watch >= 0 && run.IndexOf(Watch) is var at and >= 0)
                FirstWatchedAt = Count + at;
            if (width == ShardTokenWidth.UInt16)
                Narrow(run, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(buffer.AsSpan(used, run.Length * 2)));
            else
                System.Runtime.InteropServices.MemoryMarshal.AsBytes(run).CopyTo(buffer.AsSpan(used)); // little-endian, as llm.c reads it
            used += run.Length * bytesPerToken;
            currentCount += run.Length;
            Count += run.Length;
            tokens = tokens[run.Length..];
        }
    }

    /// <summary>Ids already checked to lie in [0, 65,536) to uint16, 16 at a time where the CPU has Vector256.</summary>
    static void Narrow(ReadOnlySpan<int> from, Span<ushort> to)
    {
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
            for (; i + 16 <= from.Length; i += 16)
            {
                var lo = Vector256.Create<int>(from[i..]).AsUInt32();
                var hi = Vector256.Create<int>(from[(i + 8)..]).AsUInt32();
                Vector256.Narrow(lo, hi).CopyTo(to[i..]);
            }
        for (; i < from.Length; i++)
            to[i] = (ushort)from[i];
    }

    /// <summary>Closes the last shard. A split that received no token gets one empty shard, so it still exists.</summary>
    public void Complete()
    {
        if (completed)
            return;
        if (current is null)
            Roll();
        Close();
        completed = true;
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

    /// <summary>
    /// Moves every token from position <paramref name="keep"/> on to <paramref name="to"/>, leaving this split
    /// <paramref name="keep"/> tokens long: nanoGPT's split of one document by position, done once the stream has
    /// ended and its length is known, so the tokens are written once and only the tail is copied. The shard holding
    /// the cut is truncated (its header and SHA-256 redone), later shards are deleted. Call after <see cref="Complete"/>.
    /// </summary>
    public void MoveTailTo(long keep, ShardWriter to)
    {
        if (current is not null)
            throw new InvalidOperationException("MoveTailTo needs a completed split: call Complete first.");
        ArgumentOutOfRangeException.ThrowIfNegative(keep);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(keep, Count);
        var bytesPerToken = (int)width;
        var raw = new byte[1 << 18];
        var ids = new int[raw.Length / bytesPerToken];
        long start = 0;
        var k = 0;
        while (k < done.Count - 1 && start + done[k].Tokens <= keep)
            start += done[k++].Tokens;
        for (var j = k; j < done.Count; j++)
        {
            var path = Path.Combine(dir, done[j].Name);
            var from = j == k ? keep - start : 0;
            using (var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None, 1 << 16))
            {
                file.Position = TokenShard.HeaderBytes + from * bytesPerToken;
                for (var left = done[j].Tokens - from; left > 0;)
                {
                    var n = (int)Math.Min(ids.Length, left);
                    file.ReadExactly(raw, 0, n * bytesPerToken);
                    if (width == ShardTokenWidth.UInt16)
                        for (var i = 0; i < n; i++)
                            ids[i] = BinaryPrimitives.ReadUInt16LittleEndian(raw.AsSpan(2 * i));
                    else
                        raw.AsSpan(0, n * 4).CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(ids.AsSpan()));
                    to.Write(ids.AsSpan(0, n));
                    left -= n;
                }
                if (j == k)
                {
                    file.SetLength(TokenShard.HeaderBytes + from * bytesPerToken);
                    file.Position = 0;
                    file.Write(TokenShard.Header(from, width));
                    file.Flush(flushToDisk: true);
                    using var rehash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                    file.Position = TokenShard.HeaderBytes;
                    for (var left = from * bytesPerToken; left > 0;)
                    {
                        var n = (int)Math.Min(raw.Length, left);
                        file.ReadExactly(raw, 0, n);
                        rehash.AppendData(raw, 0, n);
                        left -= n;
                    }
                    done[j] = (done[j].Name, from, Convert.ToHexStringLower(rehash.GetHashAndReset()));
                }
            }
            if (j > k)
                File.Delete(path);
        }
        done.RemoveRange(k + 1, done.Count - k - 1);
        if (k > 0 && done[k].Tokens == 0)
        {
            File.Delete(Path.Combine(dir, done[k].Name)); // the cut fell on a shard boundary
            done.RemoveAt(k);
        }
        Count = keep;
        if (FirstWatchedAt >= keep)
            FirstWatchedAt = -1;
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
