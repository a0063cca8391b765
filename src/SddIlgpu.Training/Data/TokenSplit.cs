// A split (train or validation) seen as (T + 1)-token windows addressed by a 64-bit index: either tokens in
// memory or llm.c shards memory-mapped from disk. A window never crosses a shard boundary, as in llm.c's
// data loader, so shards of any number and size are drawn from as one range.
namespace SddIlgpu.Training.Data;

/// <summary>Tokens of one split, read window by window; ids are checked against the vocabulary as they are read.</summary>
public abstract class TokenSplit : IDisposable
{
    /// <summary>Total number of tokens.</summary>
    public abstract long Count { get; }

    /// <summary>Where the tokens come from (a file, a folder or a description), for messages.</summary>
    public abstract string Source { get; }

    /// <summary>Number of windows of <paramref name="seqLen"/> inputs plus one target token.</summary>
    public abstract long WindowCount(int seqLen);

    /// <summary>Copies window <paramref name="index"/> (seqLen + 1 tokens) into <paramref name="dest"/>.</summary>
    /// <param name="index">In [0, <see cref="WindowCount"/>).</param>
    /// <param name="dest">Length seqLen + 1.</param>
    protected abstract void ReadWindowCore(long index, Span<int> dest);

    /// <summary>Copies window <paramref name="index"/> into <paramref name="dest"/> (length seqLen + 1) and checks every id.</summary>
    /// <exception cref="DataException">A token id is outside [0, <paramref name="vocabSize"/>): the data was made with another tokenizer.</exception>
    public void ReadWindow(long index, Span<int> dest, int vocabSize)
    {
        var seqLen = dest.Length - 1;
        var windows = WindowCount(seqLen);
        if (index < 0 || index >= windows)
            throw new ArgumentOutOfRangeException(nameof(index), $"Window {index} is outside [0, {windows}).");
        ReadWindowCore(index, dest);
        foreach (var id in dest)
            if ((uint)id >= (uint)vocabSize)
                throw new DataException($"'{Source}' holds token id {id}, outside the model's vocabulary of {vocabSize}: the data was made with another tokenizer. Prepare it again with the model's tokenizer.");
    }

    public virtual void Dispose() => GC.SuppressFinalize(this);
}

/// <summary>A split held in memory (small corpora, and the tests).</summary>
public sealed class ArrayTokenSplit(ArraySegment<int> tokens, string source) : TokenSplit
{
    /// <summary>The tokens.</summary>
    public ArraySegment<int> Tokens { get; } = tokens;

    public override long Count => Tokens.Count;

    public override string Source { get; } = source;

    public override long WindowCount(int seqLen) => Math.Max(0, Tokens.Count - seqLen);

    protected override void ReadWindowCore(long index, Span<int> dest) => Tokens.AsSpan((int)index, dest.Length).CopyTo(dest);
}

/// <summary>A split made of llm.c shards, each memory-mapped; windows are numbered shard by shard.</summary>
public sealed class ShardTokenSplit : TokenSplit
{
    readonly MappedShard[] shards;
    long[] windowStarts = [];
    int windowSeqLen = -1;
    bool disposed;

    /// <summary>Maps every shard (header checked, nothing read). Order matters: it numbers the windows.</summary>
    /// <exception cref="DataException">A shard is missing or invalid, or the shards mix token widths.</exception>
    public ShardTokenSplit(IReadOnlyList<string> paths, string source)
    {
        if (paths.Count == 0)
            throw new DataException($"'{source}' has no shards.");
        Source = source;
        shards = new MappedShard[paths.Count];
        try
        {
            for (var i = 0; i < paths.Count; i++)
                shards[i] = new MappedShard(paths[i]);
        }
        catch
        {
            foreach (var s in shards)
                s?.Dispose();
            throw;
        }
        Count = shards.Sum(s => s.Count);
    }

    /// <summary>The mapped shards, in window order.</summary>
    public IReadOnlyList<MappedShard> Shards => shards;

    public override long Count { get; }

    public override string Source { get; }

    public override long WindowCount(int seqLen) => shards.Sum(s => Math.Max(0, s.Count - seqLen));

    protected override void ReadWindowCore(long index, Span<int> dest)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        var starts = WindowStarts(dest.Length - 1);
        // The last shard whose first window is at or before index: an empty shard shares its start with the
        // next one, so taking the last such shard skips it.
        var k = Array.BinarySearch(starts, index);
        if (k < 0)
            k = ~k - 1;
        while (k + 1 < starts.Length && starts[k + 1] <= index)
            k++;
        shards[k].Read(index - starts[k], dest);
    }

    long[] WindowStarts(int seqLen)
    {
        if (seqLen == windowSeqLen)
            return windowStarts;
        var starts = new long[shards.Length];
        long total = 0;
        for (var i = 0; i < shards.Length; i++)
        {
            starts[i] = total;
            total += Math.Max(0, shards[i].Count - seqLen);
        }
        windowSeqLen = seqLen;
        return (windowStarts = starts);
    }

    public override void Dispose()
    {
        if (disposed)
            return;
        disposed = true;
        foreach (var s in shards)
            s.Dispose();
        base.Dispose();
    }
}
