// `sdd sample`, `sdd eval` and `sdd plot`: use a finished (or running) training run.
using System.Text;
using System.Text.Unicode;
using SddIlgpu.Layers;
using SddIlgpu.Tensors;
using SddIlgpu.Training;
using SddIlgpu.Training.Checkpoints;
using SddIlgpu.Training.Data;
using SddIlgpu.Training.Metrics;

namespace SddIlgpu.Cli;

public static class SampleCommands
{
    public static readonly Flag[] SampleFlags =
    [
        new("prompt", "text to continue", Default: "empty"),
        new("tokens", "tokens to generate", Default: "300"),
        new("temperature", "sampling temperature", Default: "0.8"),
        new("top-k", "sample from the k most likely tokens (0: all)", Default: "40"),
        new("seed", "sampling seed", Default: "1"),
        Flag.Device(),
    ];

    public static readonly Flag[] EvalFlags =
    [
        new("data", "text file to evaluate on (its validation part)", Default: "the run's own data"),
        new("batches", "validation batches", Default: "the run's eval-batches"),
        Flag.Device(),
    ];

    public static readonly Flag[] PlotFlags = [new("out", "PNG to write", Default: "loss.png beside the log")];

    public static int Sample(IReadOnlyList<string> argv)
    {
        var a = CliArgs.Parse(argv, SampleFlags, maxPositional: 1);
        var path = Checkpoint(a);
        var state = Training.Checkpoints.Checkpoint.ReadState(path);
        var (tokenizer, startToken) = TokenizerJson.Read(state.TokenizerJson);
        using var device = Device.Open(a.String("device", "auto"));
        using var weights = new ModelWeights(device, state.Model);
        Training.Checkpoints.Checkpoint.Load(path, weights, null);
        using var sampler = new TextSampler(weights);
        var prompt = a.String("prompt", "");
        var ids = sampler.Continue(tokenizer, prompt, a.Int("tokens", 300),
            a.Double("temperature") ?? 0.8, a.Int("top-k", 40), a.ULong("seed") ?? 1, startToken);
        WriteSample([.. Encoding.UTF8.GetBytes(prompt), .. tokenizer.DecodeBytes(ids)]);
        return 0;
    }

    // A sample is the exact bytes its tokens stand for: written as text when they are UTF-8, as raw bytes when
    // they are not (a byte-level model of a Latin-1 file, a sample cut inside a character).
    static void WriteSample(byte[] bytes)
    {
        if (Utf8.IsValid(bytes))
        {
            Console.WriteLine(Encoding.UTF8.GetString(bytes));
            return;
        }
        Console.Out.Flush();
        using var stdout = Console.OpenStandardOutput();
        stdout.Write(bytes);
        stdout.Write("\n"u8);
    }

    public static int Eval(IReadOnlyList<string> argv)
    {
        var a = CliArgs.Parse(argv, EvalFlags, maxPositional: 1);
        var path = Checkpoint(a);
        var state = Training.Checkpoints.Checkpoint.ReadState(path);
        var tokenizer = Tokenizers.FromJson(state.TokenizerJson);
        var data = a.String("data") ?? (state.DataSource == GeneratedCorpus.Name ? null : state.DataSource);
        var corpus = TrainCommand.LoadCorpus(data, tokenizer.Kind, TextCorpus.DefaultCacheDir, tokenizer);
        using var device = Device.Open(a.String("device", "auto"));
        var train = state.Train with { EvalBatches = a.Int("batches") ?? state.Train.EvalBatches };
        var outDir = Path.Combine(Path.GetTempPath(), $"sdd-eval-{Environment.ProcessId}");
        try
        {
            using var trainer = Trainer.Resume(device, path, corpus, outDir, new TrainerOptions { WritePlot = false });
            var loss = trainer.Evaluate();
            Console.WriteLine($"validation loss {loss:F4} over {train.EvalBatches} batches of {train.Batch}×{state.Model.SeqLen} tokens from {corpus.Source} (step {state.Step})");
        }
        finally
        {
            if (Directory.Exists(outDir))
                Directory.Delete(outDir, recursive: true);
        }
        return 0;
    }

    public static int Plot(IReadOnlyList<string> argv)
    {
        var a = CliArgs.Parse(argv, PlotFlags, maxPositional: 1);
        if (a.Positional.Count == 0)
            throw new UsageException("Give the run folder (or its log.jsonl).");
        var target = a.Positional[0];
        var logPath = Directory.Exists(target) ? Path.Combine(target, Trainer.LogFile) : target;
        var records = StepRecord.ReadLog(logPath);
        if (records.Count == 0)
            throw new InvalidDataException($"'{logPath}' has no steps to plot.");
        var output = a.String("out") ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(logPath))!, Trainer.PlotFile);
        LossPlot.Write(output, records, Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(logPath))) ?? "loss");
        Console.WriteLine($"Wrote {output} ({records.Count} steps)");
        return 0;
    }

    static string Checkpoint(CliArgs a)
    {
        if (a.Positional.Count == 0)
            throw new UsageException("Give a checkpoint (the checkpoint.safetensors of a run folder, or the folder).");
        var p = a.Positional[0];
        return Directory.Exists(p) ? Path.Combine(p, Trainer.CheckpointFile) : p;
    }
}
