// What the trainer reads: a tokenizer and two token splits, in memory (a text corpus) or memory-mapped from
// llm.c shards (a prepared folder). Either way batches are drawn by the same seeded sampler.
namespace SddIlgpu.Training.Data;

/// <summary>A tokenizer with its train and validation splits.</summary>
public sealed class TrainingData(ITokenizer tokenizer, TokenSplit train, TokenSplit validation, string source, int? startToken = null) : IDisposable
{
    bool disposed;

    /// <summary>The tokenizer the tokens were made with.</summary>
    public ITokenizer Tokenizer { get; } = tokenizer;

    /// <summary>Training tokens.</summary>
    public TokenSplit Train { get; } = train;

    /// <summary>Validation tokens.</summary>
    public TokenSplit Validation { get; } = validation;

    /// <summary>Where the data came from (a file, a prepared folder), recorded in checkpoints.</summary>
    public string Source { get; } = source;

    /// <summary>
    /// The token an empty prompt starts from (<see cref="TextCorpus.StartToken"/>: one seen in training); null when
    /// unknown (prepared shards), where sampling falls back to newline.
    /// </summary>
    public int? StartToken { get; } = startToken;

    /// <summary>Wraps an in-memory corpus (its 90/10 split by position).</summary>
    public static implicit operator TrainingData(TextCorpus corpus) =>
        new(corpus.Tokenizer, new ArrayTokenSplit(corpus.Train, $"{corpus.Source} (train)"),
            new ArrayTokenSplit(corpus.Validation, $"{corpus.Source} (validation)"), corpus.Source, corpus.StartToken);

    /// <summary>Throws when either split has no window of seq_len + 1 tokens.</summary>
    /// <exception cref="DataException">A split is too short; the message names the sizes and the fix.</exception>
    public void EnsureLongEnough(int seqLen)
    {
        if (Train.WindowCount(seqLen) < 1 || Validation.WindowCount(seqLen) < 1)
            throw new DataException(
                $"'{Source}' has {Train.Count:N0} tokens for training and {Validation.Count:N0} for validation, but each part needs a window of at least seq_len + 1 = {seqLen + 1}. " +
                "Use more text or a smaller --seq-len.");
    }

    public void Dispose()
    {
        if (disposed)
            return;
        disposed = true;
        Train.Dispose();
        Validation.Dispose();
    }
}
