// `sdd prepare`: inputs → documents → tokens → llm.c shards, with bounded memory. Groups of pieces are encoded
// on every core and written in input order as they finish (OrderedParallel), so the shards equal a sequential
// encode token for token. Everything is written into a temporary folder that is renamed into place at the end.
using System.Text;
using System.Text.Json;
using SddIlgpu.Tensors.Random;

namespace SddIlgpu.Training.Data.Prepare;

/// <summary>What <c>sdd prepare</c> does.</summary>
public sealed record PrepareOptions
{
    /// <summary>Input files: text (one document), .jsonl, .parquet, or .gz of any of these.</summary>
    public required IReadOnlyList<string> Inputs { get; init; }

    /// <summary>"char", "byte" or "gpt2".</summary>
    public required string Tokenizer { get; init; }

    /// <summary>The prepared folder to create.</summary>
    public required string OutDir { get; init; }

    /// <summary>JSON Lines field / Parquet column with the text.</summary>
    public string Field { get; init; } = "text";

    /// <summary>Fraction of documents (or, for a single document, of tokens) that go to validation; in (0, 1).</summary>
    public double ValFraction { get; init; } = 0.1;

    /// <summary>When set, the first N documents are validation instead (llm.c's convention: the first shard is val).</summary>
    public int? ValDocs { get; init; }

    /// <summary>Seed of the document split.</summary>
    public ulong Seed { get; init; } = 1337;

    /// <summary>Tokens per shard (llm.c writes 100M).</summary>
    public long ShardTokens { get; init; } = 100_000_000;

    /// <summary>Encoding threads (1 = sequential).</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;

    /// <summary>Shard name prefix: <c>{prefix}_train_000000.bin</c>.</summary>
    public string Prefix { get; init; } = "sdd";

    /// <summary>Encode with this tokenizer instead of building one (a resumed run's; its vocabulary must cover the text).</summary>
    public ITokenizer? FixedTokenizer { get; init; }

    /// <summary>Target size of the pieces a text file is cut into for parallel encoding (tests make it small).</summary>
    internal int ChunkBytes { get; init; } = DocumentSource.ChunkBytes;

    /// <summary>Replace an existing, non-empty output folder.</summary>
    public bool Overwrite { get; init; }

    /// <summary>The most encoding threads a prepare takes (each holds a few MiB in flight).</summary>
    public const int MaxThreads = 256;

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad option and its fix.</summary>
    public void Validate()
    {
        if (Inputs.Count == 0)
            throw new ArgumentException("Give at least one input file to prepare.");
        if (!Data.Tokenizers.Kinds.Contains(Tokenizer))
            throw new ArgumentException($"Unknown tokenizer '{Tokenizer}'. Use one of: {string.Join(", ", Data.Tokenizers.Kinds)}.");
        if (ValDocs is null && !(ValFraction > 0 && ValFraction < 1))
            throw new ArgumentException($"--val-fraction must be in (0, 1), got {ValFraction}. Validation needs some data and training needs the rest.");
        if (ValDocs is < 1)
            throw new ArgumentException($"--val-docs must be at least 1, got {ValDocs}.");
        if (ShardTokens is < 1 or > int.MaxValue)
            throw new ArgumentException($"--shard-tokens must be in [1, {int.MaxValue}] (llm.c's header holds an int32 count), got {ShardTokens}.");
        if (Threads is < 1 or > MaxThreads)
            throw new ArgumentException($"--threads must be in [1, {MaxThreads}], got {Threads}. This machine has {Environment.ProcessorCount} cores; more threads than cores gains nothing.");
        if (string.IsNullOrWhiteSpace(OutDir))
            throw new ArgumentException("--out is empty. Give the folder to create.");
        if (string.IsNullOrWhiteSpace(Prefix) || Prefix.IndexOfAny(['/', '\\']) >= 0)
            throw new ArgumentException($"--prefix '{Prefix}' must be a plain file-name prefix.");
    }
}

/// <summary>Progress of a prepare run.</summary>
/// <param name="BytesRead">Input bytes consumed (compressed bytes for .gz).</param>
/// <param name="TotalBytes">Size of all inputs on disk.</param>
/// <param name="Tokens">Tokens written.</param>
/// <param name="Documents">Documents seen.</param>
/// <param name="Phase">"vocabulary" (char: first pass) or "encode".</param>
public sealed record PrepareProgress(long BytesRead, long TotalBytes, long Tokens, long Documents, string Phase);

/// <summary>Prepares token shards from text, JSON Lines and Parquet inputs.</summary>
public static class DatasetPreparer
{
    /// <summary>Separator between documents for the char tokenizer: U+0003 END OF TEXT.</summary>
    public const char CharSeparator = '\u0003';

    /// <summary>Separator between documents for the byte tokenizer: 0xFF, a byte that never occurs in UTF-8.</summary>
    public const int ByteSeparator = 0xFF;

    /// <summary>Runs a prepare and returns the manifest written into <see cref="PrepareOptions.OutDir"/>.</summary>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    /// <exception cref="DataException">An input is missing or not valid (the message names the file and where).</exception>
    /// <exception cref="IOException">The output folder exists (without <see cref="PrepareOptions.Overwrite"/>) or cannot be written.</exception>
    public static PreparedManifest Run(PrepareOptions options, IProgress<PrepareProgress>? progress = null, CancellationToken cancel = default)
    {
        options.Validate();
        var inputs = options.Inputs.Select(Path.GetFullPath).ToArray();
        foreach (var input in inputs)
            if (!File.Exists(input))
                throw new DataException($"Input '{input}' does not exist. Check the paths given to `sdd prepare`.");
        if (inputs.GroupBy(i => i).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw new ArgumentException($"Input '{twice.Key}' is given {twice.Count()} times: its documents would be trained on twice. Give each input once.");
        var outDir = Path.GetFullPath(options.OutDir).TrimEnd(Path.DirectorySeparatorChar);
        if (File.Exists(outDir))
            throw new IOException($"--out '{outDir}' is a file. Give the path of a folder to create.");
        foreach (var input in inputs)
            if (IsWithin(input, outDir))
                throw new IOException($"--out '{outDir}' holds the input '{input}', which replacing the folder would delete. Choose an --out outside the inputs' folders.");
        if (IsWithin(Path.GetFullPath(Environment.CurrentDirectory), outDir))
            throw new IOException($"--out '{outDir}' is the current folder or holds it. Choose a new folder for --out.");
        if (Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any() && !options.Overwrite)
            throw new IOException($"Output folder '{outDir}' already exists and is not empty. Choose another --out or pass --overwrite to replace it.");
        var total = inputs.Sum(p => new FileInfo(p).Length);
        var positionSplit = options.ValDocs is null && inputs.Length == 1 && DocumentSource.FormatOf(inputs[0]) == InputFormat.Text;

        // The temporary folder comes first, so an --out that cannot be written fails before any encoding.
        var parent = Path.GetDirectoryName(outDir)!;
        var work = Path.Combine(parent, $".{Path.GetFileName(outDir)}.partial-{Environment.ProcessId}");
        try
        {
            Directory.CreateDirectory(parent);
            RemoveStalePartials(parent, Path.GetFileName(outDir));
            if (Directory.Exists(work))
                Directory.Delete(work, recursive: true);
            Directory.CreateDirectory(work);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            var why = e is UnauthorizedAccessException ? "permission denied" : File.Exists(parent) ? "it is a file" : "the file system refused it";
            throw new IOException($"Cannot create --out '{outDir}' in '{parent}' ({why}). Choose an --out in a folder you can write.");
        }
        ITokenizer tokenizer;
        try
        {
            tokenizer = options.FixedTokenizer ?? options.Tokenizer switch
            {
                "char" => BuildCharVocabulary(inputs, options, !positionSplit, total, progress, cancel),
                _ => Data.Tokenizers.Create(options.Tokenizer, ""),
            };
        }
        catch
        {
            TryDelete(work);
            throw;
        }
        try
        {
            var manifest = Encode(inputs, options, tokenizer, positionSplit, work, total, progress, cancel);
            File.WriteAllText(Path.Combine(work, PreparedManifest.FileName), JsonSerializer.Serialize(manifest, PreparedJsonContext.Default.PreparedManifest));
            Publish(work, outDir, options.Overwrite);
            return manifest;
        }
        catch
        {
            TryDelete(work);
            throw;
        }
    }

    /// <summary>
    /// Renames the finished folder into place. Without <paramref name="overwrite"/> an --out that another run filled
    /// meanwhile is never replaced (the checks at start-up cannot see a run that publishes later).
    /// </summary>
    static void Publish(string work, string outDir, bool overwrite)
    {
        if (Directory.Exists(outDir) && !overwrite)
        {
            if (Directory.EnumerateFileSystemEntries(outDir).Any())
                throw new IOException($"Output folder '{outDir}' was filled by another run while this one prepared; it was left as it is. Choose another --out, or pass --overwrite to replace it.");
            Directory.Delete(outDir); // empty, as at start-up
        }
        if (!Directory.Exists(outDir))
        {
            try
            {
                Directory.Move(work, outDir);
                return;
            }
            catch (IOException) when (Directory.Exists(outDir) && !overwrite)
            {
                throw new IOException($"Output folder '{outDir}' was created by another run while this one prepared; it was left as it is. Choose another --out, or pass --overwrite to replace it.");
            }
        }
        var old = outDir + $".old-{Environment.ProcessId}";
        Directory.Move(outDir, old);
        Directory.Move(work, outDir);
        TryDelete(old);
    }

    /// <summary>Whether <paramref name="path"/> is <paramref name="dir"/> or lies inside it.</summary>
    static bool IsWithin(string path, string dir) =>
        path == dir || path.StartsWith(dir + Path.DirectorySeparatorChar, StringComparison.Ordinal);

    /// <summary>
    /// Deletes <c>.NAME.partial-PID</c> folders of prepares that no longer run (a kill -9 or a second Ctrl+C leaves
    /// one): the PID is not a live process. Live ones are another prepare's work in progress and are kept.
    /// </summary>
    static void RemoveStalePartials(string parent, string name)
    {
        foreach (var dir in Directory.EnumerateDirectories(parent, $".{name}.partial-*"))
            if (int.TryParse(dir[(dir.LastIndexOf('-') + 1)..], out var pid) && pid != Environment.ProcessId && !IsRunning(pid))
                TryDelete(dir);
    }

    static bool IsRunning(int pid)
    {
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    static void TryDelete(string dir)
    {
        try
        {
            if (Directory.Exists(dir))
                Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>First pass for the char tokenizer: the set of code points of every document.</summary>
    static ITokenizer BuildCharVocabulary(string[] inputs, PrepareOptions o, bool withSeparator, long total, IProgress<PrepareProgress>? progress, CancellationToken cancel)
    {
        var seen = new HashSet<int>();
        var groups = Batches(inputs, o, o.ChunkBytes, 256, b => progress?.Report(new PrepareProgress(b, total, 0, 0, "vocabulary")));
        foreach (var (_, set) in OrderedParallel.Select(groups, g =>
        {
            var set = new HashSet<int>();
            var bmp = new bool[0x10000];
            foreach (var item in g)
            {
                Validate(item.Piece);
                CodePoints(item.Piece.Bytes, bmp, set);
            }
            for (var c = 0; c < bmp.Length; c++)
                if (bmp[c])
                    set.Add(c);
            return set;
        }, o.Threads, 4 * o.Threads, cancel))
            seen.UnionWith(set);
        if (withSeparator)
            seen.Add(CharSeparator);
        if (seen.Count == 0)
            throw new DataException($"The inputs ({string.Join(", ", inputs)}) hold no text, so there is no character vocabulary.");
        var sb = new StringBuilder();
        foreach (var cp in seen.Order())
            sb.Append(char.ConvertFromUtf32(cp));
        return Data.Tokenizers.Create("char", sb.ToString());
    }

    /// <summary>
    /// Marks the code points of valid UTF-8 <paramref name="utf8"/>: BMP ones in <paramref name="bmp"/> (one store
    /// per character), the rest in <paramref name="beyond"/>.
    /// </summary>
    static void CodePoints(ReadOnlySpan<byte> utf8, bool[] bmp, HashSet<int> beyond)
    {
        for (var i = 0; i < utf8.Length;)
        {
            var b = utf8[i];
            if (b < 0x80)
            {
                bmp[b] = true;
                i++;
                continue;
            }
            System.Text.Rune.DecodeFromUtf8(utf8[i..], out var r, out var used);
            if (r.IsBmp)
                bmp[r.Value] = true;
            else
                beyond.Add(r.Value);
            i += used;
        }
    }

    readonly record struct BatchItem(TextPiece Piece, int InputIndex, long ConsumedAfter);

    /// <summary>Pieces of all inputs, grouped into runs of at least <paramref name="bytes"/> bytes or of
    /// <paramref name="count"/> pieces (many short JSON Lines documents make one unit of work).</summary>
    static IEnumerable<List<BatchItem>> Batches(string[] inputs, PrepareOptions o, int bytes, int count, Action<long> inInput)
    {
        var batch = new List<BatchItem>();
        long size = 0, before = 0;
        for (var k = 0; k < inputs.Length; k++)
        {
            long consumed = 0;
            foreach (var piece in DocumentSource.Read(inputs[k], o.Field, c => { consumed = c; inInput(before + c); }, o.ChunkBytes,
                         DocumentSource.RuleFor(o.FixedTokenizer?.Kind ?? o.Tokenizer)))
            {
                batch.Add(new BatchItem(piece, k, before + consumed));
                size += piece.Bytes.Length;
                if (size >= bytes || batch.Count >= count)
                {
                    yield return batch;
                    batch = [];
                    size = 0;
                }
            }
            before += new FileInfo(inputs[k]).Length;
        }
        if (batch.Count > 0)
            yield return batch;
    }

    /// <summary>Strict UTF-8 decode of a piece; NUL is refused (text tokenizers only).</summary>
    static string Decode(TextPiece piece)
    {
        var nul = piece.Bytes.AsSpan().IndexOf((byte)0);
        if (nul >= 0)
            throw new DataException($"Input '{piece.Input}' has a NUL byte at {Where(piece, nul)}: it is binary, not text. Give a text file, or use --tokenizer byte for raw bytes.");
        try
        {
            return DocumentSource.Strict.GetString(piece.Bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new DataException($"Input '{piece.Input}' is not valid UTF-8 at {Where(piece, Math.Max(0, e.Index))}. Convert it first, e.g. `iconv -f LATIN1 -t UTF-8 in.txt > out.txt`, or use --tokenizer byte.");
        }
    }

    static string Where(TextPiece piece, int index) =>
        piece.FileOffset >= 0 ? $"byte offset {piece.FileOffset + index}" : $"{piece.Where}, byte {index} of its text";

    static int[] EncodePiece(TextPiece piece, ITokenizer tokenizer)
    {
        if (tokenizer.Kind == "byte")
        {
            var ids = new int[piece.Bytes.Length];
            for (var i = 0; i < ids.Length; i++)
                ids[i] = piece.Bytes[i];
            return ids;
        }
        if (tokenizer is CharTokenizer chars)
        {
            Validate(piece);
            return chars.EncodeUtf8(piece.Bytes);
        }
        var text = Decode(piece);
        if (tokenizer.Kind == "gpt2")
            RefuseLongWords(piece);
        return text.Length == 0 ? [] : tokenizer.Encode(text);
    }

    /// <summary>The longest GPT-2 pre-token (a run of letters, of digits or of other symbols) a prepare accepts, in UTF-8 bytes.</summary>
    internal const int MaxWordBytes = 1 << 16;

    static readonly System.Buffers.SearchValues<byte> AsciiSpace = System.Buffers.SearchValues.Create(" \t\n\r\v\f"u8);

    /// <summary>
    /// GPT-2's BPE merges inside one pre-token in time quadratic in its length (measured: a 256 KiB word 13 s, 1 MiB
    /// over 3 minutes), so a text with a giant word would seem to hang. Runs between ASCII spaces are found with a
    /// vectorised search; only a run longer than <see cref="MaxWordBytes"/> is split into the pre-tokenizer's
    /// classes (\p{L}+, \p{N}+, other symbols) and refused if one class run is still that long.
    /// </summary>
    static void RefuseLongWords(TextPiece piece)
    {
        var bytes = piece.Bytes.AsSpan();
        for (var pos = 0; pos < bytes.Length;)
        {
            var next = bytes[pos..].IndexOfAny(AsciiSpace);
            var run = next < 0 ? bytes.Length - pos : next;
            if (run > MaxWordBytes)
            {
                int start = pos, kind = -1;
                for (var i = pos; i < pos + run;)
                {
                    System.Text.Rune.DecodeFromUtf8(bytes[i..], out var r, out var used);
                    var k = System.Text.Rune.IsWhiteSpace(r) ? 0 : System.Text.Rune.IsLetter(r) ? 1 : System.Text.Rune.IsNumber(r) ? 2 : 3;
                    if (k != kind)
                        (start, kind) = (i, k);
                    i += used;
                    if (k != 0 && i - start > MaxWordBytes)
                        throw new DataException(
                            $"Input '{piece.Input}' has a word of more than {MaxWordBytes:N0} bytes ({(kind == 1 ? "letters" : kind == 2 ? "digits" : "symbols")} without a break) at {Where(piece, start)}. " +
                            "GPT-2's BPE takes time quadratic in a word's length (a 1 MiB word takes minutes): break the text up, or use --tokenizer byte or char.");
                }
            }
            pos += run + 1;
        }
    }

    /// <summary>The checks of <see cref="Decode"/> without making the string (vectorised; the slow path names the offset).</summary>
    static void Validate(TextPiece piece)
    {
        if (piece.Bytes.AsSpan().IndexOf((byte)0) >= 0 || !System.Text.Unicode.Utf8.IsValid(piece.Bytes))
            Decode(piece); // throws the message with the byte offset
    }

    /// <summary>The separator token put before a document, or -1 for none.</summary>
    static int SeparatorBefore(ITokenizer tokenizer, bool firstInSplit) => tokenizer.Kind switch
    {
        "gpt2" => 50256, // llm.c's convention: <|endoftext|> before every document
        "byte" => firstInSplit ? -1 : ByteSeparator,
        _ => firstInSplit ? -1 : tokenizer.Encode(CharSeparator.ToString())[0],
    };

    static string SeparatorText(ITokenizer tokenizer, bool documents) => tokenizer.Kind switch
    {
        "gpt2" => documents ? "<|endoftext|> (id 50256) before every document, as llm.c's preparation scripts write it" : "none (one document)",
        "byte" => documents ? "byte 0xFF (never part of UTF-8) between documents" : "none (one document)",
        _ => documents ? "U+0003 END OF TEXT between documents" : "none (one document)",
    };

    static PreparedManifest Encode(string[] inputs, PrepareOptions o, ITokenizer tokenizer, bool positionSplit, string work,
        long total, IProgress<PrepareProgress>? progress, CancellationToken cancel)
    {
        var vocab = tokenizer.VocabSize;
        var trainWriter = new ShardWriter(work, o.Prefix, "train", vocab, o.ShardTokens) { Watch = Data.Tokenizers.Newline(tokenizer) ?? -1 };
        var valWriter = new ShardWriter(work, o.Prefix, "val", vocab, o.ShardTokens);
        var perInput = new long[inputs.Length];
        long documents = 0, trainDocs = 0, valDocs = 0, tokens = 0;
        var sepStream = Philox.StreamOf("prepare.val-split");
        var toVal = false;
        try
        {
            // One thread reads groups of pieces, o.Threads workers encode them, and this thread writes them in
            // input order as they come: no barrier between groups, and at most 4 groups per worker in memory.
            var groups = Batches(inputs, o, o.ChunkBytes, 256, b => progress?.Report(new PrepareProgress(b, total, tokens, documents, "encode")));
            var encodedGroups = OrderedParallel.Select(groups, g =>
            {
                var e = new int[g.Count][];
                for (var i = 0; i < g.Count; i++)
                    e[i] = EncodePiece(g[i].Piece, tokenizer);
                return e;
            }, o.Threads, 4 * o.Threads, cancel);
            foreach (var (batch, encoded) in encodedGroups)
            {
                cancel.ThrowIfCancellationRequested();
                for (var i = 0; i < batch.Count; i++)
                {
                    var item = batch[i];
                    if (item.Piece.StartsDocument)
                    {
                        perInput[item.InputIndex]++;
                        if (!positionSplit)
                        {
                            toVal = o.ValDocs is int n ? documents < n : Philox.Uniform(o.Seed, sepStream, (ulong)documents) < o.ValFraction;
                            var writer = toVal ? valWriter : trainWriter;
                            var sep = SeparatorBefore(tokenizer, toVal ? valDocs == 0 : trainDocs == 0);
                            if (sep >= 0)
                                writer.Write([sep]);
                            if (toVal)
                                valDocs++;
                            else
                                trainDocs++;
                        }
                        documents++;
                    }
                    (toVal ? valWriter : trainWriter).Write(encoded[i]);
                    tokens += encoded[i].Length;
                }
                progress?.Report(new PrepareProgress(batch[^1].ConsumedAfter, total, tokens, documents, "encode"));
            }
            if (positionSplit)
            {
                // One document: the last ValFraction of its tokens is validation (nanoGPT's 90/10 by position). All
                // of them went to the training shards; the tail moves once the count is known.
                trainWriter.Complete();
                var count = trainWriter.Count;
                var keep = (long)(count * (1.0 - o.ValFraction));
                if (count == 0)
                    throw new DataException($"Input '{inputs[0]}' holds no text (it is empty or only a byte order mark), so there is nothing to train on.");
                if (keep == 0 || keep == count)
                    throw new DataException(
                        $"Input '{inputs[0]}' is {count} token(s) long, so its split by position ({1 - o.ValFraction:0.####} / {o.ValFraction:0.####}) leaves the {(keep == 0 ? "training" : "validation")} split empty. " +
                        "Give more text, or change --val-fraction.");
                trainWriter.MoveTailTo(keep, valWriter);
                trainDocs = valDocs = 1;
            }
            else if (trainDocs == 0 || valDocs == 0)
                throw new DataException(
                    $"The {documents} document(s) put {trainDocs} in training and {valDocs} in validation; each needs at least one. " +
                    (documents < 2 ? "Give more documents." : o.ValDocs is not null ? $"Give --val-docs below {documents}." : "Change --val-fraction or use --val-docs."));
            trainWriter.Complete();
            valWriter.Complete();
        }
        finally
        {
            trainWriter.Dispose();
            valWriter.Dispose();
        }
        return new PreparedManifest
        {
            Format = PreparedManifest.FormatName,
            Version = PreparedManifest.CurrentVersion,
            Tokenizer = tokenizer.ToJson(),
            TokenizerKind = tokenizer.Kind,
            VocabSize = vocab,
            SplitMode = positionSplit ? "position" : "documents",
            ValFraction = o.ValFraction,
            ValDocs = o.ValDocs,
            Seed = o.Seed,
            Separator = SeparatorText(tokenizer, !positionSplit),
            StartToken = trainWriter.SawWatched ? trainWriter.Watch : trainWriter.First,
            Documents = documents,
            Train = new PreparedSplit(trainWriter.Count, trainDocs, [.. trainWriter.Shards.Select(s => new PreparedShard(s.Name, s.Tokens, s.Sha256))]),
            Val = new PreparedSplit(valWriter.Count, valDocs, [.. valWriter.Shards.Select(s => new PreparedShard(s.Name, s.Tokens, s.Sha256))]),
            Inputs = [.. inputs.Select((p, k) => new PreparedInput(p, new FileInfo(p).Length, DocumentSource.FormatOf(p).ToString(), perInput[k]))],
            CreatedUtc = DateTime.UtcNow.ToString("O"),
        };
    }
}
