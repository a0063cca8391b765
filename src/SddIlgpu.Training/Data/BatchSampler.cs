// Deterministic random batches: window index = Philox(seed, stream, draw index) modulo the number of
// windows, in 64-bit. A sampler's whole state is the number of draws so far, which a checkpoint stores.
using SddIlgpu.Tensors.Random;

namespace SddIlgpu.Training.Data;

/// <summary>Draws (B, T) input/target windows from a token split (in memory or memory-mapped shards).</summary>
public sealed class BatchSampler
{
    readonly TokenSplit split;
    readonly ulong seed, stream, windows;
    readonly int vocabSize;
    readonly int[] window;

    /// <summary>A sampler over an in-memory token range; ids are checked against <paramref name="vocabSize"/>.</summary>
    public BatchSampler(ArraySegment<int> tokens, int batch, int seqLen, ulong seed, string streamName, int vocabSize = int.MaxValue)
        : this(new ArrayTokenSplit(tokens, streamName), batch, seqLen, seed, streamName, vocabSize)
    {
    }

    /// <summary>A sampler over <paramref name="split"/> (not owned: the caller disposes it).</summary>
    /// <exception cref="DataException">The split has no window of seqLen + 1 tokens.</exception>
    public BatchSampler(TokenSplit split, int batch, int seqLen, ulong seed, string streamName, int vocabSize)
    {
        var count = split.WindowCount(seqLen);
        if (count < 1)
            throw new DataException($"'{split.Source}' ({split.Count} tokens) has no window of seq_len + 1 = {seqLen + 1} tokens.");
        this.split = split;
        Batch = batch;
        SeqLen = seqLen;
        this.seed = seed;
        this.vocabSize = vocabSize;
        windows = (ulong)count;
        window = new int[seqLen + 1];
        stream = Philox.StreamOf(streamName);
    }

    public int Batch { get; }
    public int SeqLen { get; }

    /// <summary>Number of windows drawn so far (the loader's position; restored on resume).</summary>
    public long Position { get; set; }

    /// <summary>Fills inputs and targets, each B·T, with the next batch (token ids as floats).</summary>
    /// <exception cref="DataException">A token id is outside the vocabulary.</exception>
    public void Next(Span<float> inputs, Span<float> targets)
    {
        for (var b = 0; b < Batch; b++)
        {
            var (x0, x1, _, _) = Philox.Block(seed, stream, (ulong)Position++);
            var index = (long)((((ulong)x1 << 32) | x0) % windows);
            split.ReadWindow(index, window, vocabSize);
            for (var t = 0; t < SeqLen; t++)
            {
                inputs[b * SeqLen + t] = window[t];
                targets[b * SeqLen + t] = window[t + 1];
            }
        }
    }
}
