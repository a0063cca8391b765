// `sdd train`: resolves the model and training configurations from a preset and flags (one flag per
// record property), prints them, and runs the trainer with a progress line.
using System.Globalization;
using SddIlgpu.Layers;
using SddIlgpu.Tensors;
using SddIlgpu.Training;
using SddIlgpu.Training.Data;

namespace SddIlgpu.Cli;

public static class TrainCommand
{
    public static readonly Flag[] Flags =
    [
        new("preset", "model preset: tiny, shakespeare-cpu, baby-gpt", Default: "tiny"),
        new("data", "UTF-8 text file to train on", Default: "the built-in generated fables"),
        new("out", "output folder (checkpoint, log.jsonl, loss.png)", Default: "runs/PRESET"),
        new("resume", "continue from a checkpoint.safetensors (its configuration is used)"),
        Flag.Device(),
        new("tokenizer", "char, byte or gpt2", Default: "char"),
        new("cache-dir", "where encoded corpora are cached", Default: "~/.cache/sdd/tokens"),
        new("stop-at", "stop after this step (resume later with --resume)"),
        new("quiet", "print only the final summary", IsBool: true),
        new("dry-run", "print the configuration and memory estimate, then exit without creating anything", IsBool: true),
        new("overwrite", "replace the run (checkpoint, log, plot) already in --out", IsBool: true),
        // ModelConfig
        new("residual", "pre, post or deepnorm", Default: "post"),
        new("linear", "plain, sdd-code or sdd-paper", Default: "sdd-code"),
        new("d-model", "width C"),
        new("n-layer", "number of blocks L"),
        new("n-head", "query heads NH"),
        new("n-kv-head", "key/value heads KVH (divides NH)"),
        new("ffn-hidden", "SwiGLU hidden width F", Default: "8C/3 rounded up to a multiple of 8"),
        new("seq-len", "context length T"),
        new("norm-eps", "RMS norm epsilon", Default: "1e-5"),
        new("rope-theta", "rotary base", Default: "10000"),
        new("init-std", "init std of matrices", Default: "1/sqrt(2.5 C)"),
        // TrainConfig
        new("steps", "optimizer steps"),
        new("batch", "sequences per micro-batch B"),
        new("grad-accum", "micro-batches per step", Default: "1"),
        new("lr", "peak learning rate"),
        new("min-lr-ratio", "final lr as a fraction of the peak", Default: "0.1"),
        new("warmup", "linear warmup steps"),
        new("weight-decay", "AdamW decoupled weight decay", Default: "0.1"),
        new("beta1", "AdamW beta1", Default: "0.9"),
        new("beta2", "AdamW beta2", Default: "0.95"),
        new("adam-eps", "AdamW epsilon", Default: "1e-8"),
        new("grad-clip", "global gradient-norm clip (0: off)", Default: "1"),
        new("decay-norm-gains", "apply weight decay to norm gains and alphas", Default: "true"),
        new("seed", "seed of weights, batches and sampling", Default: "1337"),
        new("eval-every", "evaluate every N steps (0: only at the end)"),
        new("eval-batches", "validation batches per evaluation"),
        new("sample-every", "print a sample every N steps (0: off)", Default: "0"),
        new("sample-tokens", "tokens per sample", Default: "200"),
        new("temperature", "sampling temperature", Default: "0.8"),
        new("top-k", "sample from the k most likely tokens (0: all)", Default: "40"),
        new("checkpoint-every", "checkpoint every N steps (0: only at the end)", Default: "0"),
        new("log-every", "log every N steps", Default: "1"),
    ];

    public const string Synopsis = "[--preset P] [--data FILE] [--steps N] [--seed S] [--device D] [--out DIR] [flags]";

    public static int Run(IReadOnlyList<string> argv)
    {
        var a = CliArgs.Parse(argv, Flags);
        var deviceName = a.String("device", "auto");
        Device.Parse(deviceName); // a misspelt device fails before any data is read
        using var signals = RunSignals.ForConsole();
        Device? device = null;
        Trainer? trainer;
        try
        {
            trainer = Start(a, deviceName, d => device = d, signals.Token);
        }
        catch
        {
            device?.Dispose();
            throw;
        }
        using (device)
        using (trainer)
        {
            if (trainer is null)
                return 0; // --dry-run
            var result = trainer.Run();
            Console.WriteLine();
            return RunReport.Print(result, signals, ResumeCommand(trainer.CheckpointPath, device!.Name, a));
        }
    }

    /// <summary>The exact command that continues this run (flags that are not in the checkpoint included).</summary>
    internal static string ResumeCommand(string checkpoint, string deviceName, CliArgs a)
    {
        var parts = new List<string> { "sdd", "train", "--resume", RunReport.Quote(Path.GetFullPath(checkpoint)), "--device", RunReport.Quote(deviceName) };
        if (a.String("cache-dir") is { } cache)
            parts.AddRange(["--cache-dir", RunReport.Quote(Path.GetFullPath(cache))]);
        if (a.String("data") is { } data)
            parts.AddRange(["--data", RunReport.Quote(Path.GetFullPath(data))]);
        return string.Join(' ', parts);
    }

    /// <summary>
    /// Resolves data and configurations first (cheap, most errors), checks the memory estimate's size limits, then
    /// opens the device and builds the trainer (which checks the estimate against the device's memory before it
    /// allocates or creates the folder). Returns null for --dry-run, after printing the estimate.
    /// </summary>
    static Trainer? Start(CliArgs a, string deviceName, Action<Device> opened, CancellationToken cancel)
    {
        var quiet = a.Bool("quiet") ?? false;
        var cacheDir = a.String("cache-dir") ?? TextCorpus.DefaultCacheDir;
        Device Open()
        {
            var d = Device.Open(deviceName);
            opened(d);
            return d;
        }
        if (a.String("resume") is { } resume)
        {
            foreach (var f in Flags.Where(f => f.Name is not ("resume" or "device" or "out" or "data" or "quiet" or "steps" or "cache-dir" or "stop-at" or "dry-run" or "overwrite")))
                if (a.Has(f.Name))
                    throw new UsageException($"--{f.Name} cannot change a resumed run: the checkpoint's configuration is used (only --steps, --stop-at, --data, --out, --device, --cache-dir, --quiet, --dry-run, --overwrite may be given).");
            var state = Training.Checkpoints.Checkpoint.ReadState(resume);
            var tokenizer = Tokenizers.FromJson(state.TokenizerJson);
            var corpus = LoadCorpus(a.String("data") ?? (state.DataSource == GeneratedCorpus.Name ? null : state.DataSource), tokenizer.Kind, cacheDir, tokenizer);
            var outDir = a.String("out") ?? Path.GetDirectoryName(Path.GetFullPath(resume))!;
            var train = a.Int("steps") is int steps ? state.Train with { Steps = steps } : state.Train;
            var estimate = PreCheck(state.Model, train, deviceName, a.Bool("dry-run") == true);
            var device = Open();
            if (a.Bool("dry-run") == true)
                return DryRun(device, corpus, state.Model, train, outDir, estimate);
            var trainer = Trainer.Resume(device, resume, corpus, outDir, Options(a, quiet, cancel), a.Int("steps"));
            Console.WriteLine($"Resuming {resume} at step {trainer.Step} on {device}");
            return trainer;
        }
        else
        {
            var preset = a.String("preset", "tiny");
            var defaults = TrainConfig.ForPreset(preset);
            var tokenizerKind = a.String("tokenizer", defaults.Tokenizer);
            var corpus = LoadCorpus(a.String("data"), tokenizerKind, cacheDir, null);
            var model = ResolveModel(a, preset, corpus.Tokenizer.VocabSize);
            var train = ResolveTrain(a, defaults with { Tokenizer = tokenizerKind });
            model.Validate();
            train.Validate();
            corpus.EnsureLongEnough(model.SeqLen);
            var outDir = a.String("out", Path.Combine("runs", preset));
            var estimate = PreCheck(model, train, deviceName, a.Bool("dry-run") == true);
            var device = Open();
            if (a.Bool("dry-run") == true)
                return DryRun(device, corpus, model, train, outDir, estimate);
            var trainer = Trainer.Create(device, model, train, corpus, outDir, Options(a, quiet, cancel));
            PrintConfiguration(device, corpus, model, train, outDir);
            return trainer;
        }
    }

    static TrainerOptions Options(CliArgs a, bool quiet, CancellationToken cancel) => new()
    {
        StopAtStep = a.Int("stop-at"),
        OnStep = quiet ? null : Progress.Print,
        Cancellation = cancel,
        Overwrite = a.Bool("overwrite") ?? false,
    };

    /// <summary>
    /// The estimate, refused at once, before the device compiles its kernels, when a size overflows or (on the CPU
    /// devices, whose memory is known without opening them) when it does not fit. The trainer checks every device.
    /// </summary>
    static MemoryEstimate PreCheck(ModelConfig model, TrainConfig train, string deviceName, bool dryRun)
    {
        var estimate = MemoryEstimate.For(model, train);
        if (!dryRun && deviceName.Trim().ToLowerInvariant() is "cpu" or "ilgpu-cpu")
            estimate.EnsureFits(Device.AvailableHostMemoryBytes(), Device.AvailableHostMemoryBytes(), hostMemoryDevice: true, deviceName, train);
        return estimate;
    }

    static Trainer? DryRun(Device device, TextCorpus corpus, ModelConfig model, TrainConfig train, string outDir, MemoryEstimate estimate)
    {
        PrintConfiguration(device, corpus, model, train, outDir);
        Console.WriteLine($"memory     estimate for {device.Name}:");
        Console.WriteLine(estimate.Describe(device.IsHostMemory));
        Console.WriteLine($"  {(device.IsHostMemory ? "host RAM available now" : "device memory"),-46}{MemoryEstimate.Format(device.MemoryBytes),12}");
        estimate.EnsureFits(device, train);
        Console.WriteLine("Dry run: the run fits; nothing was created.");
        return null;
    }

    internal static TextCorpus LoadCorpus(string? data, string tokenizerKind, string cacheDir, ITokenizer? tokenizer) =>
        data is null
            ? TextCorpus.FromText(GeneratedCorpus.Generate(), GeneratedCorpus.Name, tokenizerKind, null, tokenizer)
            : TextCorpus.Load(data, tokenizerKind, cacheDir, tokenizer);

    internal static ModelConfig ResolveModel(CliArgs a, string preset, int vocab)
    {
        var residual = a.String("residual") is { } r ? ModelConfig.ParseResidual(r) : Residual.Post;
        var linear = a.String("linear") is { } l ? ModelConfig.ParseLinear(l) : LinearKind.SddCode;
        var m = ModelConfig.Preset(preset, vocab, residual, linear);
        var dModel = a.Int("d-model") ?? m.DModel;
        return m with
        {
            DModel = dModel,
            NLayer = a.Int("n-layer") ?? m.NLayer,
            NHead = a.Int("n-head") ?? m.NHead,
            NKvHead = a.Int("n-kv-head") ?? a.Int("n-head") ?? m.NKvHead,
            FfnHidden = a.Int("ffn-hidden") ?? (a.Has("d-model") ? ModelConfig.DefaultFfnHidden(dModel) : m.FfnHidden),
            SeqLen = a.Int("seq-len") ?? m.SeqLen,
            NormEps = (float)(a.Double("norm-eps") ?? m.NormEps),
            RopeTheta = a.Double("rope-theta") ?? m.RopeTheta,
            InitStd = a.Double("init-std") ?? m.InitStd,
        };
    }

    internal static TrainConfig ResolveTrain(CliArgs a, TrainConfig d) => d with
    {
        Steps = a.Int("steps") ?? d.Steps,
        Batch = a.Int("batch") ?? d.Batch,
        GradAccum = a.Int("grad-accum") ?? d.GradAccum,
        Lr = a.Double("lr") ?? d.Lr,
        MinLrRatio = a.Double("min-lr-ratio") ?? d.MinLrRatio,
        Warmup = a.Int("warmup") ?? d.Warmup,
        WeightDecay = a.Double("weight-decay") ?? d.WeightDecay,
        Beta1 = a.Double("beta1") ?? d.Beta1,
        Beta2 = a.Double("beta2") ?? d.Beta2,
        AdamEps = a.Double("adam-eps") ?? d.AdamEps,
        GradClip = a.Double("grad-clip") ?? d.GradClip,
        DecayNormGains = a.Bool("decay-norm-gains") ?? d.DecayNormGains,
        Seed = a.ULong("seed") ?? d.Seed,
        EvalEvery = a.Int("eval-every") ?? d.EvalEvery,
        EvalBatches = a.Int("eval-batches") ?? d.EvalBatches,
        SampleEvery = a.Int("sample-every") ?? d.SampleEvery,
        SampleTokens = a.Int("sample-tokens") ?? d.SampleTokens,
        Temperature = a.Double("temperature") ?? d.Temperature,
        TopK = a.Int("top-k") ?? d.TopK,
        CheckpointEvery = a.Int("checkpoint-every") ?? d.CheckpointEvery,
        LogEvery = a.Int("log-every") ?? d.LogEvery,
    };

    static void PrintConfiguration(Device device, TextCorpus corpus, ModelConfig m, TrainConfig t, string outDir)
    {
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine($"device     {device}");
        Console.WriteLine($"data       {corpus.Source}: {corpus.Tokens.Length:N0} {corpus.Tokenizer.Kind} tokens (vocab {corpus.Tokenizer.VocabSize}), {corpus.Train.Count:N0} train / {corpus.Validation.Count:N0} validation{(corpus.FromCache ? ", from cache" : "")}");
        Console.WriteLine($"model      {m.ToJson()}");
        Console.WriteLine($"training   {t.ToJson()}");
        Console.WriteLine($"output     {Path.GetFullPath(outDir)}");
        Console.WriteLine(string.Create(inv, $"tokens/step {t.Batch * m.SeqLen * t.GradAccum}, uniform baseline loss ln(V) = {Math.Log(m.Vocab):F3}"));
    }
}
