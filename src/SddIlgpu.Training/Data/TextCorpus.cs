// A text corpus encoded once (cached on disk, see TokenCache) and split by position, 90 % train / 10 %
// validation, as nanoGPT does. Nothing is lost on the way in: the byte tokenizer reads a file's raw bytes and
// never decodes them; the text tokenizers (char, gpt2) read strict UTF-8, refuse NUL bytes (a binary file) and
// drop a leading UTF-8 byte order mark (an encoding signature, not text; a U+FEFF anywhere else is kept).
using System.Security.Cryptography;
using System.Text;
using System.Text.Unicode;

namespace SddIlgpu.Training.Data;

/// <summary>An encoded corpus with its train and validation token ranges.</summary>
public sealed class TextCorpus
{
    TextCorpus(string source, string name, ITokenizer tokenizer, int[] tokens, bool fromCache, string? cachePath, string? cacheWarning)
    {
        for (var i = 0; i < tokens.Length; i++)
            if ((uint)tokens[i] >= (uint)tokenizer.VocabSize)
                throw new DataException($"{name} encoded to token id {tokens[i]} at position {i}, outside its {tokenizer.Kind} tokenizer's vocabulary [0, {tokenizer.VocabSize}).");
        Source = source;
        Tokenizer = tokenizer;
        Tokens = tokens;
        FromCache = fromCache;
        CachePath = cachePath;
        CacheWarning = cacheWarning;
        var split = (int)(tokens.Length * 0.9);
        Train = new ArraySegment<int>(tokens, 0, split);
        Validation = new ArraySegment<int>(tokens, split, tokens.Length - split);
        var seen = Train.Count > 0 ? Train : new ArraySegment<int>(tokens);
        StartToken = Tokenizers.Newline(tokenizer) is int newline && seen.AsSpan().Contains(newline) ? newline : seen[0];
    }

    public string Source { get; }
    public ITokenizer Tokenizer { get; }

    /// <summary>Every token id, each in [0, Tokenizer.VocabSize).</summary>
    public int[] Tokens { get; }

    public ArraySegment<int> Train { get; }
    public ArraySegment<int> Validation { get; }

    /// <summary>The token an empty prompt starts from: newline when the training part has it, else its first token.</summary>
    public int StartToken { get; }

    /// <summary>True when the tokens came from the on-disk cache rather than a fresh encode.</summary>
    public bool FromCache { get; }

    /// <summary>The cache file of these tokens, or null when no cache folder was given.</summary>
    public string? CachePath { get; }

    /// <summary>One line saying why a cache file was not used and the text re-encoded (truncated, corrupt, ...); null when none was bad.</summary>
    public string? CacheWarning { get; }

    /// <summary>
    /// Reads and encodes a file: raw bytes for the byte tokenizer, strict UTF-8 text for the others. A missing or
    /// empty file, a NUL byte (text tokenizers), invalid UTF-8 (with its byte offset) or a character outside a
    /// given char tokenizer's vocabulary is a clear <see cref="DataException"/>.
    /// </summary>
    public static TextCorpus Load(string path, string tokenizerKind, string? cacheDir = null, ITokenizer? tokenizer = null)
    {
        if (!File.Exists(path))
            throw new DataException($"Data file '{path}' does not exist. Pass --data with a UTF-8 text file, or leave --data out to train on the built-in generated corpus.");
        var bytes = File.ReadAllBytes(path);
        var name = $"Data file '{path}'";
        var empty = new DataException($"{name} is empty. Give it some text (at least seq_len + 1 tokens in each of the train and validation parts).");
        if (bytes.Length == 0)
            throw empty;
        var kind = tokenizer?.Kind ?? tokenizerKind;
        if (kind == "byte")
            return Build(Path.GetFullPath(path), name, bytes, null, kind, cacheDir, tokenizer);
        var text = DecodeUtf8(bytes, path, out var utf8);
        if (text.Length == 0)
            throw empty;
        return Build(Path.GetFullPath(path), name, utf8, text, kind, cacheDir, tokenizer);
    }

    /// <summary>Encodes text that is already in memory (e.g. the generated default corpus); the byte tokenizer encodes its UTF-8.</summary>
    public static TextCorpus FromText(string text, string source, string tokenizerKind, string? cacheDir = null, ITokenizer? tokenizer = null)
    {
        var name = $"Corpus '{source}'";
        if (text.Length == 0)
            throw new DataException($"{name} is empty.");
        try
        {
            Tokenizers.RequireWellFormed(text);
        }
        catch (ArgumentException e)
        {
            throw new DataException($"{name} is not valid text: {e.Message}");
        }
        var kind = tokenizer?.Kind ?? tokenizerKind;
        if (kind != "byte" && text.IndexOf('\0', StringComparison.Ordinal) is var nul and >= 0)
            throw new DataException($"{name} has a NUL character at index {nul}: it is binary, not text. Use text, or the byte tokenizer for raw bytes.");
        return Build(source, name, Encoding.UTF8.GetBytes(text), kind == "byte" ? null : text, kind, cacheDir, tokenizer);
    }

    /// <summary><paramref name="content"/> is what is encoded (the raw bytes, or the UTF-8 of <paramref name="text"/>) and keys the cache.</summary>
    static TextCorpus Build(string source, string name, byte[] content, string? text, string kind, string? cacheDir, ITokenizer? tokenizer)
    {
        tokenizer ??= CreateTokenizer(kind, text, name);
        var identity = cacheDir is null ? default : new TokenCache.Identity(SHA256.HashData(content),
            SHA256.HashData(Encoding.UTF8.GetBytes(TokenizerJson.Write(tokenizer))), tokenizer.VocabSize);
        string? cachePath = null, warning = null;
        if (cacheDir is not null)
        {
            var key = SHA256.HashData([.. identity.SourceHash, .. identity.TokenizerHash]);
            cachePath = Path.Combine(cacheDir, $"{tokenizer.Kind}-{Convert.ToHexStringLower(key)[..24]}.tokens");
            if (TokenCache.Read(cachePath, identity, out var problem) is { } cached)
                return new TextCorpus(source, name, tokenizer, cached, fromCache: true, cachePath, null);
            if (problem is not null)
                warning = $"token cache '{cachePath}' {problem}; re-encoded the text.";
        }
        int[] tokens;
        try
        {
            tokens = text is null ? ByteTokenizer.Encode(content) : tokenizer.Encode(text);
        }
        catch (ArgumentException e)
        {
            throw new DataException($"{name} cannot be encoded with this {tokenizer.Kind} tokenizer: {e.Message}");
        }
        if (cachePath is not null)
        {
            try
            {
                TokenCache.Write(cachePath, identity, tokens);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A cache that cannot be written only costs a re-encode next time.
            }
        }
        return new TextCorpus(source, name, tokenizer, tokens, fromCache: false, cachePath, warning);
    }

    static ITokenizer CreateTokenizer(string kind, string? text, string name)
    {
        if (!Tokenizers.Kinds.Contains(kind))
            throw new ArgumentException($"Unknown tokenizer '{kind}'. Use one of: {string.Join(", ", Tokenizers.Kinds)}.");
        if (kind == "byte")
            return new ByteTokenizer();
        if (text is null)
            throw new DataException($"{name}: the {kind} tokenizer needs text.");
        return Tokenizers.Create(kind, text);
    }

    /// <summary>
    /// Strict UTF-8 text of a file's bytes, without a leading byte order mark; <paramref name="utf8"/> gets the
    /// bytes decoded. NUL bytes and invalid sequences are <see cref="DataException"/>s with the byte offset.
    /// </summary>
    internal static string DecodeUtf8(byte[] bytes, string path, out byte[] utf8)
    {
        var nul = bytes.AsSpan().IndexOf((byte)0);
        if (nul >= 0)
            throw new DataException(
                $"Data file '{path}' has a NUL byte at byte offset {nul}: it is a binary file, not text. Pass a UTF-8 text file, or train on its raw bytes with --tokenizer byte.");
        var bom = bytes.AsSpan().StartsWith("\uFEFF"u8) ? 3 : 0;
        var body = bytes.AsSpan(bom);
        var chars = new char[body.Length];
        var status = Utf8.ToUtf16(body, chars, out var read, out var written, replaceInvalidSequences: false);
        if (status != System.Buffers.OperationStatus.Done)
        {
            var offset = bom + read;
            var line = bytes.AsSpan(0, offset).Count((byte)'\n') + 1;
            throw new DataException(
                $"Data file '{path}' is not valid UTF-8: byte 0x{bytes[offset]:X2} at byte offset {offset} (line {line}) is not part of a UTF-8 character. " +
                $"Convert it first, e.g. iconv -f LATIN1 -t UTF-8 '{path}' > converted.txt (if it is Latin-1), or train on its raw bytes with --tokenizer byte.");
        }
        utf8 = bom == 0 ? bytes : body.ToArray();
        return new string(chars, 0, written);
    }

    /// <summary>Throws when either split is too short for one (seq_len + 1)-token window.</summary>
    public void EnsureLongEnough(int seqLen)
    {
        if (Validation.Count < seqLen + 1 || Train.Count < seqLen + 1)
            throw new DataException(
                $"Corpus '{Source}' has {Tokens.Length} tokens: {Train.Count} for training and {Validation.Count} for validation, but each part needs at least seq_len + 1 = {seqLen + 1}. " +
                $"Use a longer text (at least {(int)Math.Ceiling((seqLen + 1) / 0.1) + 1} tokens) or a smaller --seq-len.");
    }

    /// <summary>The default cache folder: $XDG_CACHE_HOME/sdd/tokens or ~/.cache/sdd/tokens.</summary>
    public static string DefaultCacheDir =>
        Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } x ? x
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "sdd", "tokens");
}

/// <summary>Bad training data: the message names the problem and the fix.</summary>
public sealed class DataException(string message) : Exception(message);
