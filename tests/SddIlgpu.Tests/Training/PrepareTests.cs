// `sdd prepare` as a library: parallel and chunked encodes equal a sequential whole-text encode, every input
// kind (text, JSON Lines, Parquet, .gz) becomes documents, splits are by whole documents, bad input is a
// clear error that leaves nothing behind, and training on the shards is exact across a resume.
using System.IO.Compression;
using System.Text;
using NUnit.Framework;
using Parquet;
using Parquet.Schema;
using SddIlgpu.Layers;
using SddIlgpu.Tests.Support;
using SddIlgpu.Training;
using SddIlgpu.Training.Data;
using SddIlgpu.Training.Data.Prepare;

namespace SddIlgpu.Tests.Training;

public sealed class PrepareTests
{
    string dir = null!;

    [SetUp]
    public void MakeDir() => dir = Directory.CreateTempSubdirectory("sdd-prepare-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(dir, recursive: true);

    static int[] AllTokens(string preparedDir, PreparedManifest m) =>
        [.. m.Train.Shards.Concat(m.Val.Shards).SelectMany(s => ReadShard(Path.Combine(preparedDir, s.Name)))];

    static int[] ReadShard(string path)
    {
        using var shard = new MappedShard(path);
        var t = new int[shard.Count];
        shard.Read(0, t);
        return t;
    }

    [TestCase("gpt2", 4)]
    [TestCase("gpt2", 1)]
    [TestCase("char", 4)]
    [TestCase("byte", 3)]
    public void ChunkedParallelEncodeEqualsTheSequentialEncodeOfTheWholeText(string kind, int threads)
    {
        // Shakespeare cut into ~8 KiB pieces (≈140 of them) encoded on several threads vs one Encode call.
        var text = File.ReadAllText(SharedPaths.Shakespeare);
        var outDir = Path.Combine(dir, "p");
        var m = DatasetPreparer.Run(new PrepareOptions { Inputs = [SharedPaths.Shakespeare], Tokenizer = kind, OutDir = outDir, Threads = threads, ChunkBytes = 8192, ShardTokens = 100_000 });
        var tokenizer = Tokenizers.FromJson(m.Tokenizer);
        int[] expected = kind == "byte" ? [.. File.ReadAllBytes(SharedPaths.Shakespeare).Select(b => (int)b)] : tokenizer.Encode(text);
        Assert.That(AllTokens(outDir, m), Is.EqualTo(expected));
        Assert.That(m.SplitMode, Is.EqualTo("position"));
        Assert.That(m.Train.Tokens, Is.EqualTo((long)(expected.Length * 0.9)), "the 90/10 split by position of a single document");
        Assert.That(m.Train.Shards, Has.Count.EqualTo((int)Math.Ceiling(m.Train.Tokens / 100_000.0)));
        if (kind == "char")
            Assert.That(m.VocabSize, Is.EqualTo(65), "tinyshakespeare has 65 characters and no separator is added to one document");
    }

    [Test]
    public void ATextFileTrainsOnTheSameWindowsAsTheInMemoryCorpus()
    {
        var outDir = Path.Combine(dir, "p");
        DatasetPreparer.Run(new PrepareOptions { Inputs = [SharedPaths.Shakespeare], Tokenizer = "char", OutDir = outDir });
        using var data = PreparedData.Open(outDir);
        var corpus = TextCorpus.Load(SharedPaths.Shakespeare, "char");
        Assert.That(data.Train.Count, Is.EqualTo(corpus.Train.Count));
        Assert.That(data.Validation.Count, Is.EqualTo(corpus.Validation.Count));
        var a = new BatchSampler(data.Train, 3, 32, 11, "train", 65);
        var b = new BatchSampler(corpus.Train, 3, 32, 11, "train", 65);
        float[] xa = new float[96], ya = new float[96], xb = new float[96], yb = new float[96];
        for (var i = 0; i < 4; i++)
        {
            a.Next(xa, ya);
            b.Next(xb, yb);
            Assert.That(xa, Is.EqualTo(xb));
        }
    }

    static string JsonLines(params string[] docs) =>
        string.Concat(docs.Select(d => System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, string> { ["id"] = "x", ["text"] = d }, TestJson.Default.DictionaryStringString) + "\n"));

    [Test]
    public void JsonLinesDocumentsAreSeparatedByEndOfTextForGpt2()
    {
        var input = Path.Combine(dir, "docs.jsonl");
        File.WriteAllText(input, JsonLines("Hello world.", "Second <|endoftext|> doc", "Third"));
        var outDir = Path.Combine(dir, "p");
        var m = DatasetPreparer.Run(new PrepareOptions { Inputs = [input], Tokenizer = "gpt2", OutDir = outDir, ValDocs = 1 });
        var gpt2 = Tokenizers.Create("gpt2", "");
        Assert.That(m.Documents, Is.EqualTo(3));
        Assert.That(m.Val.Documents, Is.EqualTo(1));
        Assert.That(m.Train.Documents, Is.EqualTo(2));
        int[] val = [50256, .. gpt2.Encode("Hello world.")];
        int[] train = [50256, .. gpt2.Encode("Second <|endoftext|> doc"), 50256, .. gpt2.Encode("Third")];
        Assert.That(ReadShard(Path.Combine(outDir, m.Val.Shards[0].Name)), Is.EqualTo(val));
        Assert.That(ReadShard(Path.Combine(outDir, m.Train.Shards[0].Name)), Is.EqualTo(train));
    }

    [Test]
    public void CharAndByteSeparateDocumentsWithTheirDocumentedTokens()
    {
        var input = Path.Combine(dir, "docs.jsonl");
        File.WriteAllText(input, JsonLines("ab", "ba", "abc", "cab"));
        var charDir = Path.Combine(dir, "c");
        var m = DatasetPreparer.Run(new PrepareOptions { Inputs = [input], Tokenizer = "char", OutDir = charDir, ValDocs = 2 });
        var t = Tokenizers.FromJson(m.Tokenizer);
        Assert.That(t.Decode(ReadShard(Path.Combine(charDir, m.Val.Shards[0].Name))), Is.EqualTo("ab\u0003ba"));
        Assert.That(t.Decode(ReadShard(Path.Combine(charDir, m.Train.Shards[0].Name))), Is.EqualTo("abc\u0003cab"));
        var byteDir = Path.Combine(dir, "b");
        var mb = DatasetPreparer.Run(new PrepareOptions { Inputs = [input], Tokenizer = "byte", OutDir = byteDir, ValDocs = 2 });
        Assert.That(ReadShard(Path.Combine(byteDir, mb.Val.Shards[0].Name)), Is.EqualTo(new[] { 'a', 'b', 0xFF, 'b', 'a' }));
    }

    [Test]
    public void ValFractionSplitsWholeDocumentsReproducibly()
    {
        var docs = Enumerable.Range(0, 200).Select(i => $"Document number {i} says hello.").ToArray();
        var input = Path.Combine(dir, "docs.jsonl");
        File.WriteAllText(input, JsonLines(docs));
        var a = DatasetPreparer.Run(new PrepareOptions { Inputs = [input], Tokenizer = "gpt2", OutDir = Path.Combine(dir, "a"), ValFraction = 0.25, Seed = 5 });
        var b = DatasetPreparer.Run(new PrepareOptions { Inputs = [input], Tokenizer = "gpt2", OutDir = Path.Combine(dir, "b"), ValFraction = 0.25, Seed = 5, Threads = 1 });
        Assert.That(a.Val.Documents + a.Train.Documents, Is.EqualTo(200));
        Assert.That(a.Val.Documents, Is.InRange(30, 70));
        Assert.That(AllTokens(Path.Combine(dir, "a"), a), Is.EqualTo(AllTokens(Path.Combine(dir, "b"), b)));
        // Every validation document is whole: the val shard is EOT-separated complete documents.
        var gpt2 = Tokenizers.Create("gpt2", "");
        var valText = gpt2.Decode(ReadShard(Path.Combine(dir, "a", a.Val.Shards[0].Name)));
        var valDocs = valText.Split("<|endoftext|>", StringSplitOptions.RemoveEmptyEntries);
        Assert.That(valDocs, Has.Length.EqualTo(a.Val.Documents));
        Assert.That(valDocs, Is.SubsetOf(docs));
    }

    [Test]
    public async Task ParquetAndGzipInputsGiveTheSameTokensAsJsonLines()
    {
        string[] docs = ["First row text.", "Second row, café 😀.", "Third."];
        var jsonl = Path.Combine(dir, "d.jsonl");
        File.WriteAllText(jsonl, JsonLines(docs));
        var parquet = Path.Combine(dir, "d.parquet");
        var field = new DataField<string>("text");
        await using (var fs = File.Create(parquet))
        {
            await using var writer = await ParquetWriter.CreateAsync(new ParquetSchema(field), fs);
            using var rg = writer.CreateRowGroup();
            await rg.WriteAsync(field, docs, null);
        }
        var gz = Path.Combine(dir, "d.jsonl.gz");
        using (var fs = File.Create(gz))
        using (var z = new GZipStream(fs, CompressionLevel.Fastest))
            z.Write(File.ReadAllBytes(jsonl));
        var results = new[] { jsonl, parquet, gz }.Select((input, i) =>
        {
            var o = Path.Combine(dir, $"o{i}");
            var m = DatasetPreparer.Run(new PrepareOptions { Inputs = [input], Tokenizer = "gpt2", OutDir = o, ValDocs = 1 });
            return AllTokens(o, m);
        }).ToArray();
        Assert.That(results[1], Is.EqualTo(results[0]));
        Assert.That(results[2], Is.EqualTo(results[0]));
    }

    [Test]
    public void AGzippedTextFileEqualsThePlainOne()
    {
        var gz = Path.Combine(dir, "shakespeare.txt.gz");
        using (var fs = File.Create(gz))
        using (var z = new GZipStream(fs, CompressionLevel.Fastest))
            z.Write(File.ReadAllBytes(SharedPaths.Shakespeare));
        var a = DatasetPreparer.Run(new PrepareOptions { Inputs = [gz], Tokenizer = "char", OutDir = Path.Combine(dir, "a"), ChunkBytes = 65536 });
        var b = DatasetPreparer.Run(new PrepareOptions { Inputs = [SharedPaths.Shakespeare], Tokenizer = "char", OutDir = Path.Combine(dir, "b") });
        Assert.That(AllTokens(Path.Combine(dir, "a"), a), Is.EqualTo(AllTokens(Path.Combine(dir, "b"), b)));
    }

    [Test]
    public void ATruncatedGzipIsRefusedNotPreparedInPart()
    {
        // Cut a gzip of Shakespeare (text) and of JSON Lines at several points, one of them between two
        // lines: .NET's GZipStream ends quietly there, so without the trailer check part of the data would
        // be prepared as if it were all of it.
        var text = File.ReadAllBytes(SharedPaths.Shakespeare);
        var jsonl = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Range(0, 3000).Select(i => $"{{\"text\":\"document {i} of a corpus.\"}}\n")));
        foreach (var (name, plain) in new[] { ("t.txt.gz", text), ("d.jsonl.gz", jsonl) })
        {
            var whole = new MemoryStream();
            using (var z = new GZipStream(whole, CompressionLevel.Fastest, leaveOpen: true))
                z.Write(plain);
            var bytes = whole.ToArray();
            foreach (var keep in new[] { bytes.Length / 3, bytes.Length / 2, bytes.Length - 8, bytes.Length - 1 })
            {
                var cut = Path.Combine(dir, name);
                File.WriteAllBytes(cut, bytes[..keep]);
                var e = Assert.Throws<DataException>(() => Prep(cut, "byte"), $"{name} cut to {keep} of {bytes.Length} bytes")!;
                Assert.That(e.Message, Does.Contain(cut).And.Contain("gzip").And.Contain("again").Or.Contain("not valid gzip"));
            }
            File.WriteAllBytes(Path.Combine(dir, name), bytes);
            Assert.DoesNotThrow(() => Prep(Path.Combine(dir, name), "byte", "whole" + name[0]));
        }
        Assert.That(Directory.GetDirectories(dir).Select(Path.GetFileName), Is.EquivalentTo(new[] { "wholet", "wholed" }));
    }

    [Test]
    public void Latin1IsRefusedWithTheByteOffsetAndNothingIsLeftBehind()
    {
        var input = Path.Combine(dir, "latin1.txt");
        var latin1 = Encoding.Latin1.GetBytes(string.Concat(Enumerable.Repeat("le café naïve à la crème brûlée. ", 60)));
        File.WriteAllBytes(input, latin1);
        var outDir = Path.Combine(dir, "p");
        var e = Assert.Throws<DataException>(() => DatasetPreparer.Run(new PrepareOptions { Inputs = [input], Tokenizer = "char", OutDir = outDir }))!;
        Assert.That(e.Message, Does.Contain("not valid UTF-8 at byte offset 6").And.Contain("iconv"));
        Assert.That(Directory.GetFileSystemEntries(dir), Is.EqualTo(new[] { input }), "no output folder and no temporary");
        // The byte tokenizer reads raw bytes: 1,980 tokens equal to the file's bytes.
        var m = DatasetPreparer.Run(new PrepareOptions { Inputs = [input], Tokenizer = "byte", OutDir = outDir });
        Assert.That(m.Train.Tokens + m.Val.Tokens, Is.EqualTo(1980));
        Assert.That(AllTokens(outDir, m), Is.EqualTo(latin1.Select(b => (int)b).ToArray()));
    }

    [Test]
    public void BadInputsAreClearErrors()
    {
        var bin = Path.Combine(dir, "bin.txt");
        File.WriteAllBytes(bin, [65, 66, 0, 67]);
        Assert.That(Assert.Throws<DataException>(() => Prep(bin, "gpt2"))!.Message, Does.Contain("NUL byte at byte offset 2"));
        var noField = Path.Combine(dir, "nf.jsonl");
        File.WriteAllText(noField, "{\"body\":\"x\"}\n");
        Assert.That(Assert.Throws<DataException>(() => Prep(noField, "gpt2"))!.Message, Does.Contain("line 1 has no \"text\" field").And.Contain("--field"));
        var notJson = Path.Combine(dir, "nj.jsonl");
        File.WriteAllText(notJson, "{\"text\":\"ok\"}\n{oops\n");
        Assert.That(Assert.Throws<DataException>(() => Prep(notJson, "gpt2"))!.Message, Does.Contain("line 2 is not valid JSON"));
        var notGz = Path.Combine(dir, "x.txt.gz");
        File.WriteAllText(notGz, "plain text, not gzip");
        Assert.That(Assert.Throws<DataException>(() => Prep(notGz, "char"))!.Message, Does.Contain("not valid gzip"));
        var notParquet = Path.Combine(dir, "x.parquet");
        File.WriteAllText(notParquet, "not parquet at all");
        Assert.That(Assert.Throws<DataException>(() => Prep(notParquet, "char"))!.Message, Does.Contain("not a readable Parquet file"));
        Assert.That(Assert.Throws<DataException>(() => Prep(Path.Combine(dir, "missing.txt"), "char"))!.Message, Does.Contain("does not exist"));
        Assert.That(Directory.GetDirectories(dir), Is.Empty, "no output and no temporary folder after any failure");
        Assert.Throws<ArgumentException>(() => DatasetPreparer.Run(new PrepareOptions { Inputs = [bin], Tokenizer = "char", OutDir = Path.Combine(dir, "o"), ValFraction = 1 }));
        Assert.Throws<ArgumentException>(() => DatasetPreparer.Run(new PrepareOptions { Inputs = [bin], Tokenizer = "bpe", OutDir = Path.Combine(dir, "o") }));
    }

    void Prep(string input, string kind, string outName = "out") =>
        DatasetPreparer.Run(new PrepareOptions { Inputs = [input], Tokenizer = kind, OutDir = outName.Length == 0 ? "" : Path.Combine(dir, outName) });

    [Test]
    public void AnExistingFolderIsKeptUnlessOverwriteIsGiven()
    {
        var input = Path.Combine(dir, "t.txt");
        File.WriteAllText(input, string.Concat(Enumerable.Repeat("some words here.\n", 100)));
        var outDir = Path.Combine(dir, "p");
        Directory.CreateDirectory(outDir);
        File.WriteAllText(Path.Combine(outDir, "mine.txt"), "keep me");
        var e = Assert.Throws<IOException>(() => DatasetPreparer.Run(new PrepareOptions { Inputs = [input], Tokenizer = "char", OutDir = outDir }))!;
        Assert.That(e.Message, Does.Contain("--overwrite"));
        Assert.That(File.ReadAllText(Path.Combine(outDir, "mine.txt")), Is.EqualTo("keep me"));
        DatasetPreparer.Run(new PrepareOptions { Inputs = [input], Tokenizer = "char", OutDir = outDir, Overwrite = true });
        Assert.That(File.Exists(Path.Combine(outDir, PreparedManifest.FileName)));
        Assert.That(File.Exists(Path.Combine(outDir, "mine.txt")), Is.False);
    }

    // ------------------------------------------------ faults a fresh user found in the streaming prepare

    sealed class OnFirstReport(Action act) : IProgress<PrepareProgress>
    {
        int done;

        public void Report(PrepareProgress value)
        {
            if (value.Phase == "encode" && Interlocked.Exchange(ref done, 1) == 0)
                act();
        }
    }

    string[] Leftovers() => [.. Directory.GetFileSystemEntries(dir).Select(Path.GetFileName).Where(n => n!.Contains(".partial-", StringComparison.Ordinal))!];

    [Test]
    public void AnOutThatHoldsAnInputOrTheCurrentFolderIsRefusedAndNothingIsDeleted()
    {
        var data = Path.Combine(dir, "sb", "data");
        Directory.CreateDirectory(data);
        var input = Path.Combine(data, "in.txt");
        File.WriteAllText(input, string.Concat(Enumerable.Repeat("some words here.\n", 100)));
        foreach (var outDir in new[] { Path.Combine(dir, "sb"), data })
        {
            var e = Assert.Throws<IOException>(() => DatasetPreparer.Run(new PrepareOptions { Inputs = [input], Tokenizer = "byte", OutDir = outDir, Overwrite = true }))!;
            Assert.That(e.Message, Does.Contain($"holds the input '{input}'").And.Contain("Choose an --out outside"));
        }
        var other = Path.Combine(dir, "elsewhere.txt");
        File.Copy(input, other);
        var keep = Environment.CurrentDirectory;
        try
        {
            Environment.CurrentDirectory = data;
            var e = Assert.Throws<IOException>(() => DatasetPreparer.Run(new PrepareOptions { Inputs = [other], Tokenizer = "byte", OutDir = ".", Overwrite = true }))!;
            Assert.That(e.Message, Does.Contain("is the current folder"));
        }
        finally
        {
            Environment.CurrentDirectory = keep;
        }
        Assert.That(File.ReadAllText(input), Does.StartWith("some words"), "the input is untouched");
        Assert.That(Directory.GetFiles(data), Has.Length.EqualTo(1));
    }

    [Test]
    public void AnEmptyOrTooShortSingleTextIsAClearErrorNotAnEmptySplit()
    {
        var empty = Path.Combine(dir, "empty.txt");
        File.WriteAllBytes(empty, []);
        var bomOnly = Path.Combine(dir, "bom.txt");
        File.WriteAllBytes(bomOnly, [0xEF, 0xBB, 0xBF]);
        var one = Path.Combine(dir, "one.txt");
        File.WriteAllText(one, "a");
        foreach (var kind in new[] { "byte", "gpt2" })
        {
            Assert.That(Assert.Throws<DataException>(() => Prep(empty, kind))!.Message, Does.Contain("holds no text"));
            Assert.That(Assert.Throws<DataException>(() => Prep(one, kind))!.Message,
                Does.Contain("1 token(s) long").And.Contain("leaves the training split empty").And.Contain("--val-fraction"));
        }
        Assert.That(Assert.Throws<DataException>(() => Prep(bomOnly, "gpt2"))!.Message, Does.Contain("holds no text"));
        var thousand = Path.Combine(dir, "k.txt");
        File.WriteAllText(thousand, new string('x', 1000));
        Assert.That(Assert.Throws<DataException>(() => DatasetPreparer.Run(new PrepareOptions { Inputs = [thousand], Tokenizer = "byte", OutDir = Path.Combine(dir, "out"), ValFraction = 0.9999 }))!.Message,
            Does.Contain("leaves the training split empty"));
        Assert.That(Directory.GetDirectories(dir), Is.Empty, "no output and no temporary folder");
    }

    [Test]
    public void ByteKeepsEveryByteAndByteAndCharCutRunsWithoutSpacesAnywhere()
    {
        var bom = Path.Combine(dir, "bom.bin");
        File.WriteAllBytes(bom, [0xEF, 0xBB, 0xBF, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74]);
        var m = DatasetPreparer.Run(new PrepareOptions { Inputs = [bom], Tokenizer = "byte", OutDir = Path.Combine(dir, "b") });
        Assert.That(AllTokens(Path.Combine(dir, "b"), m), Is.EqualTo(File.ReadAllBytes(bom).Select(b => (int)b)), "the byte tokenizer keeps the BOM: tokens are the file's bytes");

        // 300 KB with no space or newline, cut in 8 KiB pieces: GPT-2 needs a safe cut, byte and char do not.
        var dna = Path.Combine(dir, "dna.txt");
        File.WriteAllText(dna, string.Concat(Enumerable.Repeat("ACGTé😀", 30_000)));
        var text = File.ReadAllText(dna);
        foreach (var (kind, threads) in new[] { ("byte", 1), ("byte", 3), ("char", 1), ("char", 3) })
        {
            var outDir = Path.Combine(dir, $"{kind}{threads}");
            var d = DatasetPreparer.Run(new PrepareOptions { Inputs = [dna], Tokenizer = kind, OutDir = outDir, Threads = threads, ChunkBytes = 8192, ShardTokens = 50_000 });
            int[] expected = kind == "byte" ? [.. File.ReadAllBytes(dna).Select(b => (int)b)] : Tokenizers.FromJson(d.Tokenizer).Encode(text);
            Assert.That(AllTokens(outDir, d), Is.EqualTo(expected), $"{kind}, {threads} thread(s)");
        }
    }

    [Test]
    public void AGiantWordIsRefusedForGpt2InsteadOfTakingQuadraticTime()
    {
        var giant = Path.Combine(dir, "giant.txt");
        File.WriteAllText(giant, "a few words " + new string('a', DatasetPreparer.MaxWordBytes + 10) + " and the end.\n");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var e = Assert.Throws<DataException>(() => Prep(giant, "gpt2"))!;
        Assert.That(e.Message, Does.Contain("a word of more than 65,536 bytes (letters without a break) at byte offset 12").And.Contain("--tokenizer byte or char"));
        Assert.That(clock.Elapsed.TotalSeconds, Is.LessThan(20), "refused, not encoded");
        Assert.DoesNotThrow(() => Prep(giant, "char", "c"), "char has no such cost");

        // As long without a space, but the classes alternate (letters, digits, symbols): every pre-token is short.
        var mixed = Path.Combine(dir, "mixed.txt");
        File.WriteAllText(mixed, "start " + string.Concat(Enumerable.Repeat("ab12+/", (DatasetPreparer.MaxWordBytes + 10) / 6 * 2)) + " end.\n");
        Assert.DoesNotThrow(() => Prep(mixed, "gpt2", "m"));
    }

    [Test]
    public void AnOutFilledByAnotherRunMeanwhileIsLeftAsItIs()
    {
        var input = Path.Combine(dir, "t.txt");
        File.WriteAllText(input, string.Concat(Enumerable.Repeat("some words here.\n", 2000)));
        var outDir = Path.Combine(dir, "p");
        var options = new PrepareOptions { Inputs = [input], Tokenizer = "byte", OutDir = outDir, ChunkBytes = 4096 };
        var e = Assert.Throws<IOException>(() => DatasetPreparer.Run(options, new OnFirstReport(() =>
        {
            Directory.CreateDirectory(outDir);
            File.WriteAllText(Path.Combine(outDir, "theirs.txt"), "another run's output");
        })))!;
        Assert.That(e.Message, Does.Contain("was filled by another run").And.Contain("--overwrite"));
        Assert.That(File.ReadAllText(Path.Combine(outDir, "theirs.txt")), Is.EqualTo("another run's output"));
        Assert.That(Leftovers(), Is.Empty);
    }

    [Test]
    public void CancellingRemovesTheTemporaryFolderAndWritesNothing()
    {
        var input = Path.Combine(dir, "t.txt");
        File.WriteAllText(input, string.Concat(Enumerable.Repeat("some words here.\n", 20_000)));
        var outDir = Path.Combine(dir, "p");
        foreach (var kind in new[] { "gpt2", "char", "byte" })
        {
            using var cancel = new CancellationTokenSource();
            Assert.Throws(Is.InstanceOf<OperationCanceledException>(), () => DatasetPreparer.Run(
                new PrepareOptions { Inputs = [input], Tokenizer = kind, OutDir = outDir, ChunkBytes = 4096, Threads = 2 }, new OnFirstReport(cancel.Cancel), cancel.Token));
            Assert.That(Directory.Exists(outDir), Is.False, kind);
            Assert.That(Leftovers(), Is.Empty, kind);
        }
    }

    [Test]
    public void StaleTemporaryFoldersOfDeadRunsAreRemoved()
    {
        var input = Path.Combine(dir, "t.txt");
        File.WriteAllText(input, string.Concat(Enumerable.Repeat("some words here.\n", 100)));
        var stale = Path.Combine(dir, $".p.partial-{int.MaxValue}"); // what a kill -9 leaves: no such process
        Directory.CreateDirectory(stale);
        File.WriteAllText(Path.Combine(stale, ".sdd_train_000000.bin.1.tmp"), "half a shard");
        var live = Path.Combine(dir, $".p.partial-{Environment.ProcessId + 0}x"); // not a PID: never touched
        Directory.CreateDirectory(live);
        Prep(input, "byte", "p");
        Assert.That(Directory.Exists(stale), Is.False);
        Assert.That(Directory.Exists(live), Is.True);
    }

    [Test]
    public void BadOutputPathsAndThreadCountsAreClearErrors()
    {
        var input = Path.Combine(dir, "t.txt");
        File.WriteAllText(input, "some words here.\nand more.\n");
        var file = Path.Combine(dir, "afile");
        File.WriteAllText(file, "x");
        Assert.That(Assert.Throws<IOException>(() => Prep(input, "byte", "afile"))!.Message, Does.Contain("is a file"));
        Assert.That(Assert.Throws<IOException>(() => Prep(input, "byte", Path.Combine("afile", "sub")))!.Message,
            Does.Contain("Cannot create --out").And.Contain("it is a file").And.Not.Contain(".partial-"));
        Assert.That(Assert.Throws<ArgumentException>(() => Prep(input, "byte", ""))!.Message, Does.Contain("--out is empty"));
        Assert.That(Assert.Throws<ArgumentException>(() => DatasetPreparer.Run(new PrepareOptions { Inputs = [input, Path.Combine(dir, ".", "t.txt")], Tokenizer = "byte", OutDir = Path.Combine(dir, "o") }))!.Message,
            Does.Contain($"Input '{input}' is given 2 times"));
        foreach (var threads in new[] { 0, PrepareOptions.MaxThreads + 1, int.MaxValue })
            Assert.That(Assert.Throws<ArgumentException>(() => DatasetPreparer.Run(new PrepareOptions { Inputs = [input], Tokenizer = "byte", OutDir = Path.Combine(dir, "o"), Threads = threads }))!.Message,
                Does.Contain($"--threads must be in [1, {PrepareOptions.MaxThreads}]"));
        Assert.That(Directory.GetDirectories(dir), Is.Empty);
    }

    [Test]
    public void AChangedShardIsRefusedWhenOpened()
    {
        var outDir = Path.Combine(dir, "p");
        var m = DatasetPreparer.Run(new PrepareOptions { Inputs = [SharedPaths.Shakespeare], Tokenizer = "char", OutDir = outDir });
        var shard = Path.Combine(outDir, m.Train.Shards[0].Name);
        TokenShard.Write(shard, [1, 2, 3], 65);
        Assert.That(Assert.Throws<DataException>(() => PreparedData.Open(outDir))!.Message, Does.Contain("holds 3 tokens but"));
        File.WriteAllText(Path.Combine(outDir, PreparedManifest.FileName), "{\"format\": 3");
        Assert.That(Assert.Throws<DataException>(() => PreparedData.Open(outDir))!.Message, Does.Contain("not a valid prepared-folder manifest"));
    }

    [Test]
    public void AnEmptyPromptStartsFromATokenSeenInTraining()
    {
        var withNewline = DatasetPreparer.Run(new PrepareOptions { Inputs = [SharedPaths.Shakespeare], Tokenizer = "char", OutDir = Path.Combine(dir, "a") });
        Assert.That(Tokenizers.FromJson(withNewline.Tokenizer).Decode([withNewline.StartToken]), Is.EqualTo("\n"));
        var flat = Path.Combine(dir, "flat.txt");
        File.WriteAllText(flat, string.Concat(Enumerable.Repeat("zebra yak ", 200)));
        var noNewline = DatasetPreparer.Run(new PrepareOptions { Inputs = [flat], Tokenizer = "byte", OutDir = Path.Combine(dir, "b") });
        Assert.That(noNewline.StartToken, Is.EqualTo((int)'z'), "no newline in training: the first training token, never id 0");
        using var data = PreparedData.Open(Path.Combine(dir, "b"));
        Assert.That(data.StartToken, Is.EqualTo((int)'z'));
    }

    [Test]
    public void VerifyFindsAFlippedTokenByte()
    {
        var outDir = Path.Combine(dir, "p");
        var m = DatasetPreparer.Run(new PrepareOptions { Inputs = [SharedPaths.Shakespeare], Tokenizer = "char", OutDir = outDir, ShardTokens = 300_000 });
        Assert.That(PreparedData.Verify(outDir).Train.Tokens, Is.EqualTo(m.Train.Tokens));
        var shard = Path.Combine(outDir, m.Train.Shards[1].Name);
        var bytes = File.ReadAllBytes(shard);
        bytes[5000] ^= 1;
        File.WriteAllBytes(shard, bytes);
        Assert.That(Assert.Throws<DataException>(() => PreparedData.Verify(outDir))!.Message, Does.Contain(m.Train.Shards[1].Name).And.Contain("SHA-256"));
    }

    static ModelConfig Small(int vocab) =>
        new(vocab, DModel: 16, NLayer: 2, NHead: 2, NKvHead: 1, FfnHidden: 24, SeqLen: 8, Residual: Residual.Post, Linear: LinearKind.SddCode);

    [Test]
    public void TrainingOnShardsResumesExactly()
    {
        var outDir = Path.Combine(dir, "p");
        var input = Path.Combine(dir, "docs.jsonl");
        File.WriteAllText(input, JsonLines([.. Enumerable.Range(0, 40).Select(i => GeneratedCorpus.Generate(800, (ulong)i))]));
        DatasetPreparer.Run(new PrepareOptions { Inputs = [input], Tokenizer = "char", OutDir = outDir, ShardTokens = 5000, ValDocs = 4 });
        using var data = PreparedData.Open(outDir);
        Assert.That(data.Train is ShardTokenSplit { Shards.Count: > 3 });
        var device = TestDevices.Get("cpu");
        var model = Small(data.Tokenizer.VocabSize);
        var run = new TrainConfig { Steps = 6, Batch = 2, GradAccum = 2, Lr = 3e-3, Warmup = 2, EvalEvery = 3, EvalBatches = 2, Seed = 7, CheckpointEvery = 0 };
        var options = new TrainerOptions { WritePlot = false };
        float[] straight;
        using (var t = Trainer.Create(device, model, run, data, Path.Combine(dir, "straight"), options))
        {
            t.Run();
            straight = t.Weights.Values.ToArray();
        }
        var half = Path.Combine(dir, "half");
        using (var t = Trainer.Create(device, model, run, data, half, options with { StopAtStep = 3 }))
            t.Run();
        using (var t = Trainer.Resume(device, Path.Combine(half, Trainer.CheckpointFile), data, half, options))
        {
            t.Run();
            Check.BitIdentical(t.Weights.Values.ToArray(), straight, "weights after resume on shards");
        }
    }

    [Test]
    public void AFolderOfLlmcShardsTrainsAFewSteps()
    {
        // Shards as llm.c's dev/data scripts write them (no manifest): GPT-2 tokens, uint16.
        var shards = Path.Combine(dir, "llmc");
        Directory.CreateDirectory(shards);
        var gpt2 = Tokenizers.Create("gpt2", "");
        var ids = gpt2.Encode(File.ReadAllText(SharedPaths.Shakespeare)[..20_000]);
        TokenShard.Write(Path.Combine(shards, "tiny_shakespeare_val.bin"), ids.AsSpan(0, 1000), 50257);
        TokenShard.Write(Path.Combine(shards, "tiny_shakespeare_train.bin"), ids.AsSpan(1000), 50257);
        using var data = PreparedData.Open(shards);
        Assert.That(data.Tokenizer.Kind, Is.EqualTo("gpt2"));
        var device = TestDevices.Get("cpu");
        var model = new ModelConfig(50257, DModel: 16, NLayer: 1, NHead: 2, NKvHead: 1, FfnHidden: 24, SeqLen: 16, Residual: Residual.Pre, Linear: LinearKind.Plain);
        using var t = Trainer.Create(device, model, new TrainConfig { Steps = 3, Batch = 2, Lr = 1e-3, Warmup = 1, EvalEvery = 0, EvalBatches = 1, Seed = 1, CheckpointEvery = 0 },
            data, Path.Combine(dir, "run"), new TrainerOptions { WritePlot = false });
        var result = t.Run();
        Assert.That(result.Steps, Is.EqualTo(3));
        Assert.That(result.ValLoss, Is.LessThan(Math.Log(50257) + 1).And.GreaterThan(0));
    }
}
