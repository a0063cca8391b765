// Deterministic random batches: window start = Philox(seed, stream, draw index) modulo the number of
// windows. A sampler's whole state is the number of draws so far, which a checkpoint stores.
using SddIlgpu.Tensors.Random;

namespace SddIlgpu.Training.Data;

/// <summary>Draws (B, T) input/target windows from a token range.</summary>
public sealed class BatchSampler
{
    readonly ArraySegment<int> tokens;
    readonly ulong seed, stream;

    public BatchSampler(ArraySegment<int> tokens, int batch, int seqLen, ulong seed, string streamName)
    {
        if (tokens.Count < seqLen + 1)
            throw new DataException($"A split of {tokens.Count} tokens is shorter than seq_len + 1 = {seqLen + 1}.");
        this.tokens = tokens;
        Batch = batch;
        SeqLen = seqLen;
        this.seed = seed;
        stream = Philox.StreamOf(streamName);
    }

    public int Batch { get; }
    public int SeqLen { get; }

    /// <summary>Number of windows drawn so far (the loader's position; restored on resume).</summary>
    public long Position { get; set; }

    /// <summary>Fills inputs and targets, each B·T, with the next batch (token ids as floats).</summary>
    public void Next(Span<float> inputs, Span<float> targets)
    {
        var windows = (ulong)(tokens.Count - SeqLen);
        for (var b = 0; b < Batch; b++)
        {
            var (x0, x1, _, _) = Philox.Block(seed, stream, (ulong)Position++);
            var start = (int)((((ulong)x1 << 32) | x0) % windows);
            for (var t = 0; t < SeqLen; t++)
            {
                inputs[b * SeqLen + t] = tokens[start + t];
                targets[b * SeqLen + t] = tokens[start + t + 1];
            }
        }
    }
}
