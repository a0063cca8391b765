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
        Device? device = null;
        Trainer trainer;
        try
        {
            trainer = Start(a, deviceName, d => device = d);
        }
        catch
        {
            device?.Dispose();
            throw;
        }
        using (device)
        using (trainer)
        {
            var result = trainer.Run();
            Console.WriteLine();
            Console.WriteLine(result.Diverged
                ? $"Diverged at step {result.Steps}: the loss became {result.FinalLoss}. Lower --lr or raise --warmup."
                : $"Done: {result.Steps} steps, train loss {result.FinalLoss:F4}, validation loss {result.ValLoss:F4}, " +
                  $"{result.TokensPerSecond:F0} tokens/s, {result.SecondsPerStep * 1000:F1} ms/step (medians)");
            Console.WriteLine($"Checkpoint: {result.CheckpointPath}");
            Console.WriteLine($"Log:        {result.LogPath}");
            if (result.PlotPath is not null)
                Console.WriteLine($"Plot:       {result.PlotPath}");
            return result.Diverged ? 3 : 0;
        }
    }

    /// <summary>Resolves data and configurations first (cheap, most errors), then opens the device and builds the trainer.</summary>
    static Trainer Start(CliArgs a, string deviceName, Action<Device> opened)
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
            foreach (var f in Flags.Where(f => f.Name is not ("resume" or "device" or "out" or "data" or "quiet" or "steps" or "cache-dir" or "stop-at")))
                if (a.Has(f.Name))
                    throw new UsageException($"--{f.Name} cannot change a resumed run: the checkpoint's configuration is used (only --steps, --stop-at, --data, --out, --device may be given).");
            var state = Training.Checkpoints.Checkpoint.ReadState(resume);
            var tokenizer = Tokenizers.FromJson(state.TokenizerJson);
            var corpus = LoadCorpus(a.String("data") ?? (state.DataSource == GeneratedCorpus.Name ? null : state.DataSource), tokenizer.Kind, cacheDir, tokenizer);
            var outDir = a.String("out") ?? Path.GetDirectoryName(Path.GetFullPath(resume))!;
            var device = Open();
            var trainer = Trainer.Resume(device, resume, corpus, outDir, Options(a, quiet), a.Int("steps"));
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
            var device = Open();
            var trainer = Trainer.Create(device, model, train, corpus, outDir, Options(a, quiet));
            PrintConfiguration(device, corpus, model, train, outDir);
            return trainer;
        }
    }

    static TrainerOptions Options(CliArgs a, bool quiet) => new()
    {
        StopAtStep = a.Int("stop-at"),
        OnStep = quiet ? null : Progress.Print,
    };

    internal static TextCorpus LoadCorpus(string? data, string tokenizerKind, string cacheDir, ITokenizer? tokenizer)
    {
        var corpus = data is null
            ? TextCorpus.FromText(GeneratedCorpus.Generate(), GeneratedCorpus.Name, tokenizerKind, null, tokenizer)
            : TextCorpus.Load(data, tokenizerKind, cacheDir, tokenizer);
        if (corpus.CacheWarning is { } warning)
            Console.Error.WriteLine($"sdd: warning: {warning}");
        return corpus;
    }

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
