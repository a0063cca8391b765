// Text generation from a model: the prompt is fed through a batch-1 copy of the model (sharing weights),
// and each next token is drawn with temperature and top-k from a seeded Philox stream.
using SddIlgpu.Layers;
using SddIlgpu.Tensors.Random;
using SddIlgpu.Training.Data;

namespace SddIlgpu.Training;

/// <summary>Samples text from the weights of a model.</summary>
public sealed class TextSampler : IDisposable
{
    readonly Model model;
    readonly float[] tokens, row;
    readonly int seqLen, vocab;

    public TextSampler(ModelWeights weights)
    {
        model = new Model(weights, 1);
        seqLen = weights.Config.SeqLen;
        vocab = weights.Config.Vocab;
        tokens = new float[seqLen];
        row = new float[vocab];
    }

    /// <summary>
    /// Continues <paramref name="prompt"/> by <paramref name="count"/> tokens and returns the prompt followed by
    /// their text (see <see cref="ITokenizer.Decode"/>; <see cref="Continue"/> gives the ids for exact bytes).
    /// </summary>
    public string Generate(ITokenizer tokenizer, string prompt, int count, double temperature, int topK, ulong seed, int? startToken = null) =>
        prompt + tokenizer.Decode(Continue(tokenizer, prompt, count, temperature, topK, seed, startToken));

    /// <summary>
    /// The ids of <paramref name="count"/> tokens continuing <paramref name="prompt"/>. An empty prompt starts from
    /// <paramref name="startToken"/>, a token seen in training (<see cref="TextCorpus.StartToken"/>, kept in the
    /// checkpoint); without one, from newline when the vocabulary has it, else id 0. The start token is not returned.
    /// </summary>
    public int[] Continue(ITokenizer tokenizer, string prompt, int count, double temperature, int topK, ulong seed, int? startToken = null)
    {
        if (tokenizer.VocabSize != vocab)
            throw new ArgumentException($"The tokenizer's vocabulary ({tokenizer.VocabSize}) differs from the model's ({vocab}).");
        var context = new List<int>(prompt.Length == 0 ? [startToken ?? Tokenizers.Newline(tokenizer) ?? 0] : tokenizer.Encode(prompt));
        var start = context.Count;
        var stream = Philox.StreamOf("sample");
        for (var i = 0; i < count; i++)
        {
            var window = Math.Min(context.Count, seqLen);
            Array.Clear(tokens);
            for (var t = 0; t < window; t++)
                tokens[t] = context[context.Count - window + t];
            model.Upload(tokens, default);
            model.Forward();
            model.Logits.Slice((long)(window - 1) * vocab, vocab).Download(row);
            context.Add(Pick(row, temperature, topK, Philox.Uniform(seed, stream, (ulong)i)));
        }
        return [.. context.Skip(start)];
    }

    /// <summary>
    /// Draws an index from softmax(logits / temperature) restricted to the top k (k = 0: all). Temperature 0 is
    /// greedy: the most likely index (the lowest on ties), the same as top-k 1. A negative, NaN or infinite
    /// temperature or a negative k is an <see cref="ArgumentOutOfRangeException"/>.
    /// </summary>
    public static int Pick(ReadOnlySpan<float> logits, double temperature, int topK, float uniform)
    {
        if (!(temperature >= 0) || double.IsInfinity(temperature))
            throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "The temperature must be 0 (greedy) or a positive finite number.");
        ArgumentOutOfRangeException.ThrowIfNegative(topK);
        var n = logits.Length;
        var order = new int[n];
        for (var i = 0; i < n; i++)
            order[i] = i;
        var copy = logits.ToArray();
        Array.Sort(order, (a, b) => copy[b].CompareTo(copy[a]) is var c && c != 0 ? c : a.CompareTo(b));
        var k = topK > 0 ? Math.Min(topK, n) : n;
        if (temperature == 0 || k == 1)
            return order[0];
        var max = copy[order[0]];
        var probs = new double[k];
        double total = 0;
        for (var i = 0; i < k; i++)
            total += probs[i] = Math.Exp((copy[order[i]] - max) / temperature);
        var target = uniform * total;
        double acc = 0;
        for (var i = 0; i < k; i++)
        {
            acc += probs[i];
            if (target < acc)
                return order[i];
        }
        return order[k - 1];
    }

    public void Dispose() => model.Dispose();
}
