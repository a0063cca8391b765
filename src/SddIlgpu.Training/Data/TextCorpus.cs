// A text corpus encoded once (cached on disk by content hash and tokenizer) and split by position,
// 90 % train / 10 % validation, as nanoGPT does.
using System.Security.Cryptography;
using System.Text;
using SddIlgpu.Layers;

namespace SddIlgpu.Training.Data;

/// <summary>An encoded corpus with its train and validation token ranges.</summary>
public sealed class TextCorpus
{
    TextCorpus(string source, ITokenizer tokenizer, int[] tokens, bool fromCache)
    {
        Source = source;
        Tokenizer = tokenizer;
        Tokens = tokens;
        FromCache = fromCache;
        var split = (int)(tokens.Length * 0.9);
        Train = new ArraySegment<int>(tokens, 0, split);
        Validation = new ArraySegment<int>(tokens, split, tokens.Length - split);
    }

    public string Source { get; }
    public ITokenizer Tokenizer { get; }
    public int[] Tokens { get; }
    public ArraySegment<int> Train { get; }
    public ArraySegment<int> Validation { get; }

    /// <summary>True when the tokens came from the on-disk cache rather than a fresh encode.</summary>
    public bool FromCache { get; }

    /// <summary>Reads and encodes a text file. A missing or empty file is a clear <see cref="DataException"/>.</summary>
    public static TextCorpus Load(string path, string tokenizerKind, string? cacheDir = null, ITokenizer? tokenizer = null)
    {
        if (!File.Exists(path))
            throw new DataException($"Data file '{path}' does not exist. Pass --data with a UTF-8 text file, or leave --data out to train on the built-in generated corpus.");
        var text = File.ReadAllText(path, Encoding.UTF8);
        if (text.Length == 0)
            throw new DataException($"Data file '{path}' is empty. Give it some text (at least seq_len + 1 tokens in each of the train and validation parts).");
        return FromText(text, Path.GetFullPath(path), tokenizerKind, cacheDir, tokenizer);
    }

    /// <summary>Encodes text that is already in memory (e.g. the generated default corpus).</summary>
    public static TextCorpus FromText(string text, string source, string tokenizerKind, string? cacheDir = null, ITokenizer? tokenizer = null)
    {
        if (text.Length == 0)
            throw new DataException($"Corpus '{source}' is empty.");
        tokenizer ??= Tokenizers.Create(tokenizerKind, text);
        var key = CacheKey(text, tokenizer);
        var cachePath = cacheDir is null ? null : Path.Combine(cacheDir, key + ".tokens");
        if (cachePath is not null && TryReadCache(cachePath, out var cached))
            return new TextCorpus(source, tokenizer, cached, fromCache: true);
        var tokens = tokenizer.Encode(text);
        if (cachePath is not null)
            TryWriteCache(cachePath, tokens);
        return new TextCorpus(source, tokenizer, tokens, fromCache: false);
    }

    /// <summary>Throws when either split is too short for one (seq_len + 1)-token window.</summary>
    public void EnsureLongEnough(int seqLen)
    {
        if (Validation.Count < seqLen + 1 || Train.Count < seqLen + 1)
            throw new DataException(
                $"Corpus '{Source}' has {Tokens.Length} tokens: {Train.Count} for training and {Validation.Count} for validation, but each part needs at least seq_len + 1 = {seqLen + 1}. " +
                $"Use a longer text (at least {(int)Math.Ceiling((seqLen + 1) / 0.1) + 1} tokens) or a smaller --seq-len.");
    }

    /// <summary>The default cache folder: $XDG_CACHE_HOME/sdd or ~/.cache/sdd.</summary>
    public static string DefaultCacheDir =>
        Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } x ? x
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "sdd", "tokens");

    static string CacheKey(string text, ITokenizer tokenizer)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(text + "\u0000" + tokenizer.ToJson()));
        return $"{tokenizer.Kind}-{Convert.ToHexStringLower(hash)[..24]}";
    }

    static bool TryReadCache(string path, out int[] tokens)
    {
        tokens = [];
        try
        {
            if (!File.Exists(path))
                return false;
            var bytes = File.ReadAllBytes(path);
            if (bytes.Length % 4 != 0)
                return false;
            tokens = new int[bytes.Length / 4];
            Buffer.BlockCopy(bytes, 0, tokens, 0, bytes.Length);
            return true;
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    static void TryWriteCache(string path, int[] tokens)
    {
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            var bytes = new byte[tokens.Length * 4];
            Buffer.BlockCopy(tokens, 0, bytes, 0, bytes.Length);
            AtomicFile.WriteAllBytes(path, bytes);
        }
        catch (IOException)
        {
            // A cache that cannot be written only costs a re-encode next time.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}

/// <summary>Bad training data: the message names the problem and the fix.</summary>
public sealed class DataException(string message) : Exception(message);
