// `sdd sample`, `sdd eval` and `sdd plot`: use a finished (or running) training run, given as its folder or a file.
using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Unicode;
using SddIlgpu.Layers;
using SddIlgpu.Tensors;
using SddIlgpu.Training;
using SddIlgpu.Training.Data;
using SddIlgpu.Training.Metrics;
using static SddIlgpu.Cli.CliOptions;

namespace SddIlgpu.Cli;

public static class SampleCommands
{
    static Argument<string> Run(string what) => new("RUN") { Description = $"the run folder or {what}" };

    public static Command CreateSample()
    {
        var run = Run("its checkpoint.safetensors");
        var prompt = With("--prompt", "text to continue (default: empty, the model starts from a token seen in training)", "", "TEXT");
        var tokens = With("--tokens", "tokens to generate", 300, "N").AtLeast(1);
        var temperature = Temperature(0.8);
        var topK = TopK(40);
        var seed = With("--seed", "sampling seed", 1UL, "S");
        var device = CliOptions.DeviceOption();
        var command = new Command("sample", "generate text from a checkpoint") { run, prompt, tokens, temperature, topK, seed, device };
        command.SetAction(p =>
        {
            var path = TrainCommand.CheckpointPath(p.GetValue(run)!);
            var state = Training.Checkpoints.Checkpoint.ReadState(path);
            var (tokenizer, startToken) = TokenizerJson.Read(state.TokenizerJson);
            using var d = Device.Open(p.GetValue(device)!);
            using var weights = new ModelWeights(d, state.Model);
            Training.Checkpoints.Checkpoint.Load(path, weights, null);
            using var sampler = new TextSampler(weights);
            var text = p.GetValue(prompt)!;
            var ids = sampler.Continue(tokenizer, text, p.GetValue(tokens), p.GetValue(temperature), p.GetValue(topK), p.GetValue(seed), startToken);
            WriteSample([.. Encoding.UTF8.GetBytes(text), .. tokenizer.DecodeBytes(ids)]);
            return 0;
        });
        return command;
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

    public static Command CreateEval()
    {
        var run = Run("its checkpoint.safetensors");
        var data = Text("--data", "data to evaluate on, its validation part: a text file, a prepared folder or llm.c shards (default: the run's own data)", "PATH");
        var batches = Optional<int>("--batches", "validation batches (default: the run's --eval-batches)", "N").AtLeast(1);
        var device = CliOptions.DeviceOption();
        var command = new Command("eval", "validation loss of a checkpoint on a text file") { run, data, batches, device };
        command.SetAction(p =>
        {
            var path = TrainCommand.CheckpointPath(p.GetValue(run)!);
            var state = Training.Checkpoints.Checkpoint.ReadState(path);
            var tokenizer = Tokenizers.FromJson(state.TokenizerJson);
            var source = p.GetValue(data) ?? (state.DataSource == GeneratedCorpus.Name ? null : state.DataSource);
            using var corpus = TrainCommand.LoadData(source, tokenizer.Kind, Training.Data.Prepare.PreparedData.DefaultCacheDir, tokenizer);
            using var d = Device.Open(p.GetValue(device)!);
            var outDir = Path.Combine(Path.GetTempPath(), $"sdd-eval-{Environment.ProcessId}-{Guid.NewGuid():N}");
            try
            {
                using var trainer = Trainer.Resume(d, path, corpus, outDir, new TrainerOptions { WritePlot = false }, evalBatches: p.GetValue(batches));
                var loss = trainer.Evaluate();
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"validation loss {loss:F4} over {trainer.TrainConfig.EvalBatches} batches of {trainer.TrainConfig.Batch}×{state.Model.SeqLen} tokens from {corpus.Source} (step {state.Step})"));
            }
            finally
            {
                if (Directory.Exists(outDir))
                    Directory.Delete(outDir, recursive: true);
            }
            return 0;
        });
        return command;
    }

    public static Command CreatePlot()
    {
        var run = Run("its log.jsonl");
        var output = Text("--out", "PNG to write (default: loss.png beside the log)", "FILE");
        var command = new Command("plot", "write the loss plot of a run folder") { run, output };
        command.SetAction(p =>
        {
            var target = p.GetValue(run)!;
            var logPath = Directory.Exists(target) ? Path.Combine(target, Trainer.LogFile) : target;
            var records = StepRecord.ReadLog(logPath);
            if (records.Count == 0)
                throw new InvalidDataException($"'{logPath}' has no steps to plot.");
            var folder = Path.GetDirectoryName(Path.GetFullPath(logPath))!;
            var png = p.GetValue(output) ?? Path.Combine(folder, Trainer.PlotFile);
            LossPlot.Write(png, records, Path.GetFileName(folder) is { Length: > 0 } name ? name : "loss");
            Console.WriteLine($"Wrote {png} ({records.Count} steps)");
            return 0;
        });
        return command;
    }
}
