// `sdd prepare INPUT... --tokenizer gpt2|byte|char --out DIR`: streams text, JSON Lines and Parquet inputs (and
// .gz of them) into llm.c token shards for `sdd train --data DIR`, with a progress bar (MB/s, ETA) on a terminal
// and plain progress lines otherwise.
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using SddIlgpu.Training.Data;
using SddIlgpu.Training.Data.Prepare;
using Spectre.Console;
using static SddIlgpu.Cli.CliOptions;

namespace SddIlgpu.Cli;

public static class PrepareCommand
{
    public static Command Create()
    {
        var inputs = new Argument<string[]>("INPUT")
        {
            Description = "input files: UTF-8 text (one document each), .jsonl (one document per line), .parquet (one per row), or .gz of any",
            Arity = ArgumentArity.OneOrMore,
        };
        var tokenizer = Choice("--tokenizer", "tokenizer: gpt2 (llm.c's), char (vocabulary from the inputs) or byte (raw bytes)", "gpt2", Tokenizers.Kinds);
        var output = new Option<string>("--out") { Description = "the prepared folder to create (shards and prepared.json)", HelpName = "DIR", Required = true };
        var field = With("--field", "JSON Lines field / Parquet column holding the text", "text", "NAME");
        var valFraction = With("--val-fraction", "fraction of documents (of tokens, for a single text file) kept for validation", 0.1)
            .Must(v => v is > 0 and < 1, "must be in (0, 1): validation needs some data and training the rest");
        var valDocs = Optional<int>("--val-docs", "the first N documents are validation instead of a random fraction (llm.c's convention)", "N").AtLeast(1);
        var seed = With("--seed", "seed of the random document split", 1337UL, "S");
        var shardTokens = With("--shard-tokens", "tokens per shard (llm.c writes 100M)", 100_000_000L, "N")
            .Must(v => v is >= 1 and <= int.MaxValue, $"must be in [1, {int.MaxValue}]");
        var threads = With("--threads", $"encoding threads (1: sequential; at most {PrepareOptions.MaxThreads})", Environment.ProcessorCount, "N")
            .Must(v => v is >= 1 and <= PrepareOptions.MaxThreads, $"must be in [1, {PrepareOptions.MaxThreads}]");
        var prefix = With("--prefix", "shard name prefix: PREFIX_train_000000.bin", "sdd", "NAME");
        var overwrite = Switch("--overwrite", "replace an existing, non-empty --out folder");
        var quiet = Switch("--quiet", "print only the summary");

        var command = new Command("prepare", "tokenize text, JSON Lines or Parquet into llm.c token shards for training");
        command.Add(inputs);
        foreach (var o in (Option[])[tokenizer, output, field, valFraction, valDocs, seed, shardTokens, threads, prefix, overwrite, quiet])
            command.Add(o);
        command.SetAction(p =>
        {
            var options = new PrepareOptions
            {
                Inputs = p.GetValue(inputs)!,
                Tokenizer = p.GetValue(tokenizer)!,
                OutDir = p.GetValue(output)!,
                Field = p.GetValue(field)!,
                ValFraction = p.GetValue(valFraction),
                ValDocs = p.GetValue(valDocs),
                Seed = p.GetValue(seed),
                ShardTokens = p.GetValue(shardTokens),
                Threads = p.GetValue(threads),
                Prefix = p.GetValue(prefix)!,
                Overwrite = p.GetValue(overwrite),
            };
            var clock = Stopwatch.StartNew();
            // Ctrl+C or SIGTERM cancels the prepare: the temporary folder is deleted and nothing appears at --out.
            using var signals = RunSignals.ForConsole("stopping; the partial output is being removed");
            PreparedManifest manifest;
            try
            {
                manifest = p.GetValue(quiet) ? DatasetPreparer.Run(options, null, signals.Token) : RunWithProgress(options, signals.Token);
            }
            catch (OperationCanceledException) when (signals.Received is { } signal)
            {
                Console.Error.WriteLine($"sdd: prepare stopped by {signal.ToString().ToUpperInvariant()}; nothing was written to {Path.GetFullPath(options.OutDir)}.");
                return signals.ExitCode;
            }
            var seconds = clock.Elapsed.TotalSeconds;
            var mb = manifest.Inputs.Sum(i => i.Bytes) / 1e6;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"Prepared {Path.GetFullPath(options.OutDir)}: {manifest.Documents:N0} documents, {manifest.Train.Tokens:N0} train / {manifest.Val.Tokens:N0} validation " +
                $"{manifest.TokenizerKind} tokens (vocab {manifest.VocabSize}) in {manifest.Train.Shards.Count + manifest.Val.Shards.Count} shards; " +
                $"{mb:F1} MB in {seconds:F1} s ({mb / Math.Max(seconds, 1e-9):F1} MB/s)"));
            Console.WriteLine($"Train with: sdd train --data {Path.GetFullPath(options.OutDir)}");
            return 0;
        });
        return command;
    }

    static PreparedManifest RunWithProgress(PrepareOptions options, CancellationToken cancel)
    {
        if (!AnsiConsole.Profile.Capabilities.Interactive || Console.IsOutputRedirected)
            return DatasetPreparer.Run(options, new PlainProgress(), cancel);
        PreparedManifest? result = null;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new TransferSpeedColumn(),
                new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                ProgressTask? task = null;
                result = DatasetPreparer.Run(options, new Reporter(r =>
                {
                    task ??= ctx.AddTask(r.Phase, maxValue: Math.Max(1, r.TotalBytes));
                    if (task.Description != r.Phase)
                    {
                        task.StopTask();
                        task = ctx.AddTask(r.Phase, maxValue: Math.Max(1, r.TotalBytes));
                    }
                    task.Value = Math.Min(r.BytesRead, r.TotalBytes);
                }), cancel);
                task?.StopTask();
            });
        return result!;
    }

    /// <summary>Calls back on the reporting thread (Progress&lt;T&gt; would post to the thread pool and lag).</summary>
    sealed class Reporter(Action<PrepareProgress> report) : IProgress<PrepareProgress>
    {
        public void Report(PrepareProgress value) => report(value);
    }

    /// <summary>A line every few seconds: phase, MB read, MB/s, tokens, ETA.</summary>
    sealed class PlainProgress : IProgress<PrepareProgress>
    {
        readonly Stopwatch clock = Stopwatch.StartNew();
        double last = -10;

        public void Report(PrepareProgress r)
        {
            var t = clock.Elapsed.TotalSeconds;
            if (t - last < 5 && r.BytesRead < r.TotalBytes)
                return;
            last = t;
            var rate = r.BytesRead / 1e6 / Math.Max(t, 1e-9);
            var eta = rate > 0 ? (r.TotalBytes - r.BytesRead) / 1e6 / rate : 0;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{r.Phase,-10} {r.BytesRead / 1e6,9:F1} / {r.TotalBytes / 1e6:F1} MB  {rate,7:F1} MB/s  {r.Tokens,14:N0} tokens  {r.Documents,10:N0} docs  ETA {TimeSpan.FromSeconds(eta):hh\\:mm\\:ss}"));
        }
    }
}
