// Opens prepared data for training: a folder made by `sdd prepare` (its manifest gives the tokenizer and the
// shards), a folder of llm.c shards without one (GPT-2 tokens, as llm.c's dev/data scripts write them), or
// a glob of shard files. Only headers are read, so opening is instant whatever the size.
using System.Text.Json;

namespace SddIlgpu.Training.Data.Prepare;

/// <summary>Opens token shards as <see cref="TrainingData"/>.</summary>
public static class PreparedData
{
    /// <summary>True when <paramref name="path"/> names a folder or a shard glob rather than a text file.</summary>
    public static bool IsShardSource(string path) =>
        Directory.Exists(path) || path.Contains('*') || path.Contains('?') ||
        (path.EndsWith(".bin", StringComparison.OrdinalIgnoreCase) && File.Exists(path));

    /// <summary>Opens a prepared folder, a folder of llm.c shards, or a glob of shard files.</summary>
    /// <param name="path">Folder or glob (e.g. <c>data/*_train_*.bin</c>; names containing <c>_val</c> are validation).</param>
    /// <param name="tokenizer">Tokenizer for shards without a manifest (default GPT-2, llm.c's).</param>
    /// <exception cref="DataException">Nothing matches, a shard is invalid, or the manifest disagrees with the shards.</exception>
    public static TrainingData Open(string path, ITokenizer? tokenizer = null)
    {
        var manifestPath = Path.Combine(path, PreparedManifest.FileName);
        if (Directory.Exists(path) && File.Exists(manifestPath))
            return OpenManifest(path, manifestPath);
        var files = Match(path);
        var train = files.Where(f => !IsVal(f)).ToList();
        var val = files.Where(IsVal).ToList();
        if (train.Count == 0 || val.Count == 0)
            throw new DataException(
                $"'{path}' has {train.Count} training and {val.Count} validation shard(s) (*_train*.bin, *_val*.bin); training needs both. " +
                "Run `sdd prepare INPUT --out DIR` and pass --data DIR.");
        tokenizer ??= Data.Tokenizers.Create("gpt2", "");
        return Build(tokenizer, train, val, Path.GetFullPath(path));
    }

    /// <summary>Where <see cref="OpenTextFile"/> keeps prepared copies of text files: $XDG_CACHE_HOME/sdd/prepared or ~/.cache/sdd/prepared.</summary>
    public static string DefaultCacheDir =>
        Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } x ? x
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "sdd", "prepared");

    /// <summary>
    /// A text file for training through the same pipeline as `sdd prepare`: prepared once into a cache folder keyed by
    /// the file's SHA-256 and the tokenizer, verified (token counts and SHA-256 of every shard) each time it is reused,
    /// and prepared again, with a warning, when it is damaged. The split is nanoGPT's 90/10 by token position.
    /// </summary>
    /// <param name="path">A UTF-8 text file.</param>
    /// <param name="tokenizerKind">"char", "byte" or "gpt2".</param>
    /// <param name="cacheDir">Cache root (<see cref="DefaultCacheDir"/>).</param>
    /// <param name="tokenizer">A resumed run's tokenizer, or null to build one (char: from the text).</param>
    /// <param name="warn">Receives the one-line warning about a damaged cache.</param>
    /// <exception cref="DataException">The file is missing, empty, not UTF-8 text, or has characters the tokenizer lacks.</exception>
    public static TrainingData OpenTextFile(string path, string tokenizerKind, string cacheDir, ITokenizer? tokenizer = null, Action<string>? warn = null)
    {
        if (!File.Exists(path))
            throw new DataException($"Data file '{path}' does not exist. Pass --data with a UTF-8 text file or a prepared folder, or leave --data out to train on the built-in generated corpus.");
        if (new FileInfo(path).Length == 0)
            throw new DataException($"Data file '{path}' is empty. Give it some text (at least seq_len + 1 tokens in each of the train and validation parts).");
        var kind = tokenizer?.Kind ?? tokenizerKind;
        string key;
        using (var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256))
        {
            using (var file = File.OpenRead(path))
            {
                var buffer = new byte[1 << 20];
                int n;
                while ((n = file.Read(buffer)) > 0)
                    sha.AppendData(buffer, 0, n);
            }
            sha.AppendData(System.Text.Encoding.UTF8.GetBytes($"\0{kind}\0{tokenizer?.ToJson()}\0{PreparedManifest.CurrentVersion}"));
            key = $"{kind}-{Convert.ToHexStringLower(sha.GetHashAndReset())[..24]}";
        }
        var dir = Path.Combine(cacheDir, key);
        if (Directory.Exists(dir))
        {
            try
            {
                Verify(dir);
                return Rename(Open(dir), Path.GetFullPath(path));
            }
            catch (DataException e)
            {
                warn?.Invoke($"warning: the cached tokens of '{path}' in '{dir}' are unusable ({e.Message}); encoding the file again.");
            }
        }
        try
        {
            Directory.CreateDirectory(cacheDir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"Cache folder '{cacheDir}' cannot be created ({e.Message}). Give a writable --cache-dir.", e);
        }
        DatasetPreparer.Run(new PrepareOptions
        {
            Inputs = [path],
            Tokenizer = kind,
            OutDir = dir,
            Overwrite = true,
            FixedTokenizer = tokenizer,
        });
        return Rename(Open(dir), Path.GetFullPath(path));
    }

    /// <summary>The data of a cached text file is named after the file (checkpoints record it and resume from it).</summary>
    static TrainingData Rename(TrainingData d, string source) => new(d.Tokenizer, d.Train, d.Validation, source);

    static bool IsVal(string file) => Path.GetFileName(file).Contains("_val", StringComparison.Ordinal);

    static List<string> Match(string path)
    {
        if (Directory.Exists(path))
            return [.. Directory.GetFiles(path, "*.bin").Where(f => Path.GetFileName(f).Contains("_train") || IsVal(f)).Order(StringComparer.Ordinal)];
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var pattern = Path.GetFileName(path);
        if (!Directory.Exists(dir))
            throw new DataException($"Folder '{dir}' of --data '{path}' does not exist.");
        return [.. Directory.GetFiles(dir, pattern).Order(StringComparer.Ordinal)];
    }

    static TrainingData OpenManifest(string dir, string manifestPath)
    {
        var manifest = ReadManifest(manifestPath);
        ITokenizer tokenizer;
        try
        {
            tokenizer = Data.Tokenizers.FromJson(manifest.Tokenizer);
        }
        catch (Exception e) when (e is JsonException or InvalidDataException or ArgumentException or KeyNotFoundException or InvalidOperationException)
        {
            throw new DataException($"'{manifestPath}' has an unreadable tokenizer ({e.Message}). Prepare the data again.");
        }
        if (tokenizer.VocabSize != manifest.VocabSize)
            throw new DataException($"'{manifestPath}' says vocab_size {manifest.VocabSize} but its tokenizer has {tokenizer.VocabSize}. Prepare the data again.");
        var train = Shards(dir, manifest.Train, manifestPath);
        var val = Shards(dir, manifest.Val, manifestPath);
        return Build(tokenizer, train, val, Path.GetFullPath(dir));
    }

    static PreparedManifest ReadManifest(string manifestPath)
    {
        PreparedManifest manifest;
        try
        {
            manifest = JsonSerializer.Deserialize(File.ReadAllText(manifestPath), PreparedJsonContext.Default.PreparedManifest)
                ?? throw new DataException($"'{manifestPath}' is empty.");
        }
        catch (JsonException e)
        {
            throw new DataException($"'{manifestPath}' is not a valid prepared-folder manifest ({e.Message.Split('\n')[0]}). Prepare the data again with `sdd prepare`.");
        }
        if (manifest.Format != PreparedManifest.FormatName || manifest.Version != PreparedManifest.CurrentVersion)
            throw new DataException($"'{manifestPath}' is format '{manifest.Format}' version {manifest.Version}; this sdd reads '{PreparedManifest.FormatName}' version {PreparedManifest.CurrentVersion}. Prepare the data again.");
        if (manifest.Train is null || manifest.Val is null || manifest.Train.Shards is null || manifest.Val.Shards is null || manifest.Inputs is null)
            throw new DataException($"'{manifestPath}' lacks its train or val shard lists. Prepare the data again.");
        return manifest;
    }

    static List<string> Shards(string dir, PreparedSplit split, string manifestPath)
    {
        var files = new List<string>();
        foreach (var s in split.Shards)
        {
            if (s.Name.IndexOfAny(['/', '\\']) >= 0 || s.Name is "." or "..")
                throw new DataException($"'{manifestPath}' names shard '{s.Name}' outside its folder.");
            var file = Path.Combine(dir, s.Name);
            var (_, count) = TokenShard.ReadHeader(file);
            if (count != s.Tokens)
                throw new DataException($"Shard '{file}' holds {count} tokens but '{manifestPath}' says {s.Tokens}: the folder was changed after it was prepared. Prepare it again.");
            files.Add(file);
        }
        return files;
    }

    /// <summary>
    /// Reads every shard of a prepared folder and checks its token count and SHA-256 against the manifest (a full
    /// read: for caches and `sdd prepare --verify`, not at every training start).
    /// </summary>
    /// <exception cref="DataException">The manifest or a shard is missing, invalid or changed; the message names it.</exception>
    public static PreparedManifest Verify(string dir)
    {
        var manifestPath = Path.Combine(dir, PreparedManifest.FileName);
        if (!File.Exists(manifestPath))
            throw new DataException($"'{dir}' has no {PreparedManifest.FileName}: it is not a finished prepared folder. Prepare it again.");
        var manifest = ReadManifest(manifestPath);
        foreach (var s in manifest.Train.Shards.Concat(manifest.Val.Shards))
        {
            var file = Path.Combine(dir, s.Name);
            var (_, count) = TokenShard.ReadHeader(file);
            if (count != s.Tokens)
                throw new DataException($"Shard '{file}' holds {count} tokens but '{manifestPath}' says {s.Tokens}. Prepare the data again.");
            using var stream = File.OpenRead(file);
            stream.Position = TokenShard.HeaderBytes;
            var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(stream));
            if (sha != s.Sha256)
                throw new DataException($"Shard '{file}' does not match its SHA-256 in '{manifestPath}': it was changed or damaged. Prepare the data again.");
        }
        return manifest;
    }

    static TrainingData Build(ITokenizer tokenizer, List<string> train, List<string> val, string source)
    {
        var t = new ShardTokenSplit(train, $"{source} (train)");
        try
        {
            return new TrainingData(tokenizer, t, new ShardTokenSplit(val, $"{source} (validation)"), source);
        }
        catch
        {
            t.Dispose();
            throw;
        }
    }
}
