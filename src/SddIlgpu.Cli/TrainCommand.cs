// `sdd train`: resolves the model and training configurations from a preset and options (one option per record
// property, its default the preset's value), prints them, and runs the trainer with a progress line. Under
// mpirun every rank runs this; only rank 0 prints, and a rank that fails aborts the job (docs/distributed.md).
// Adding a training option: declare it below beside its kind, add it to the list in the constructor, read it in
// ResolveModel / ResolveTrain / Options, and say in ResumeMay whether a resumed run accepts it.
using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using SddIlgpu.Layers;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;
using SddIlgpu.Training;
using SddIlgpu.Training.Data;
using SddIlgpu.Training.Data.Prepare;
using SddIlgpu.Training.Distributed;
using static SddIlgpu.Cli.CliOptions;

namespace SddIlgpu.Cli;

public sealed class TrainCommand
{
    const string DefaultPreset = "tiny";

    // The run
    readonly Option<string> preset = Choice("--preset", "model preset; the defaults of the model and training options below come from it", DefaultPreset, ModelConfig.PresetNames);
    readonly Option<string?> data = Text("--data", "what to train on: a UTF-8 text file, a folder made by `sdd prepare`, a folder of llm.c shards, or a glob of shard files (default: the built-in generated fables)", "PATH");
    readonly Option<string?> output = Text("--out", "output folder: checkpoint, log.jsonl, loss.png (default: runs/PRESET)", "DIR");
    readonly Option<string?> resume = Text("--resume", "continue a run: its folder or its checkpoint.safetensors (the checkpoint's configuration is used)", "RUN");
    readonly Option<string> device = CliOptions.DeviceOption();
    readonly Option<string> tokenizer = PresetTrainOption("--tokenizer", "tokenizer: " + string.Join(", ", Tokenizers.Kinds), t => t.Tokenizer, "KIND")
        .Must(k => Tokenizers.Kinds.Contains(k), $"must be one of {string.Join(", ", Tokenizers.Kinds)}");
    readonly Option<string?> cacheDir = Text("--cache-dir", $"where text files given to --data are kept prepared as token shards (default: {PreparedData.DefaultCacheDir})", "DIR");
    readonly Option<int?> stopAt = Optional<int>("--stop-at", "stop after this step, keeping the schedule of --steps (continue later with --resume)", "N").AtLeast(1);
    readonly Option<bool> quiet = Switch("--quiet", "print only the final summary");
    readonly Option<bool> dryRun = Switch("--dry-run", "print the configuration and the memory estimate, then exit without creating anything");
    readonly Option<bool> overwrite = Switch("--overwrite", "replace the run (checkpoint, log, plot) already in --out");

    // ModelConfig
    readonly Option<string> residual = Choice("--residual", "how sub-layers join the residual stream", "post", ["pre", "post", "deepnorm"]);
    readonly Option<string> linear = Choice("--linear", "fully-connected layers: plain, the authors' SDD code, or the paper's SDD", "sdd-code", ["plain", "sdd-code", "sdd-paper"]);
    readonly Option<int> dModel = PresetModelOption("--d-model", "width C", m => m.DModel).AtLeast(1);
    readonly Option<int> nLayer = PresetModelOption("--n-layer", "number of blocks L", m => m.NLayer).AtLeast(1);
    readonly Option<int> nHead = PresetModelOption("--n-head", "query heads NH (divides C; C/NH even)", m => m.NHead).AtLeast(1);
    readonly Option<int?> nKvHead = Optional<int>("--n-kv-head", "key/value heads KVH, dividing NH (default: NH)", "N").AtLeast(1);
    readonly Option<int?> ffnHidden = Optional<int>("--ffn-hidden", "SwiGLU hidden width F (default: 8C/3 rounded up to a multiple of 8)", "N").AtLeast(1);
    readonly Option<int> seqLen = PresetModelOption("--seq-len", "context length T", m => m.SeqLen).AtLeast(1);
    readonly Option<float> normEps = With("--norm-eps", "RMS norm epsilon", 1e-5f).Must(v => v > 0 && float.IsFinite(v), "must be a positive finite number");
    readonly Option<double> ropeTheta = With("--rope-theta", "rotary base", 10000.0).Positive();
    readonly Option<double> initStd = With("--init-std", "init std of matrices; 0 is 1/sqrt(2.5 C)", 0.0).NonNegative("1/sqrt(2.5 C)");

    // TrainConfig
    readonly Option<int> steps = PresetTrainOption("--steps", "optimizer steps (the length of the lr schedule)", t => t.Steps, "N").AtLeast(1);
    readonly Option<int> batch = PresetTrainOption("--batch", "sequences per micro-batch B", t => t.Batch, "B").AtLeast(1);
    readonly Option<int> gradAccum = PresetTrainOption("--grad-accum", "micro-batches per step", t => t.GradAccum, "N").AtLeast(1);
    readonly Option<double> lr = PresetTrainOption("--lr", "peak learning rate", t => t.Lr).Positive();
    readonly Option<double> minLrRatio = PresetTrainOption("--min-lr-ratio", "final learning rate as a fraction of the peak (cosine decay)", t => t.MinLrRatio).InRange(0, 1, maxIncluded: true);
    readonly Option<int> warmup = PresetTrainOption("--warmup", "linear warmup steps", t => t.Warmup, "N").AtLeast(0);
    readonly Option<double> weightDecay = PresetTrainOption("--weight-decay", "AdamW decoupled weight decay; 0 is off", t => t.WeightDecay).NonNegative("off");
    readonly Option<double> beta1 = PresetTrainOption("--beta1", "AdamW beta1", t => t.Beta1).InRange(0, 1, maxIncluded: false);
    readonly Option<double> beta2 = PresetTrainOption("--beta2", "AdamW beta2", t => t.Beta2).InRange(0, 1, maxIncluded: false);
    readonly Option<double> adamEps = PresetTrainOption("--adam-eps", "AdamW epsilon", t => t.AdamEps).Positive();
    readonly Option<double> gradClip = PresetTrainOption("--grad-clip", "global gradient-norm clip; 0 is off", t => t.GradClip).NonNegative("off");
    readonly Option<bool> decayNormGains = PresetTrainOption("--decay-norm-gains", "apply weight decay to norm gains and alphas: true (the default) or false", t => t.DecayNormGains);
    readonly Option<ulong> seed = PresetTrainOption("--seed", "seed of weights, batches and samples", t => t.Seed, "S");
    readonly Option<int> evalEvery = PresetTrainOption("--eval-every", "evaluate every N steps (0: only at the end)", t => t.EvalEvery, "N").AtLeast(0);
    readonly Option<int> evalBatches = PresetTrainOption("--eval-batches", "validation batches per evaluation", t => t.EvalBatches, "N").AtLeast(1);
    readonly Option<int> sampleEvery = PresetTrainOption("--sample-every", "print a sample every N steps (0: off)", t => t.SampleEvery, "N").AtLeast(0);
    readonly Option<int> sampleTokens = PresetTrainOption("--sample-tokens", "tokens per sample", t => t.SampleTokens, "N").AtLeast(1);
    readonly Option<double> temperature = PresetTrainOption("--temperature", "sampling temperature; 0 is greedy (the most likely token)", t => t.Temperature).NonNegative("greedy");
    readonly Option<int> topK = PresetTrainOption("--top-k", "sample from the k most likely tokens; 0 is off (every token)", t => t.TopK, "K").Must(v => v >= 0, "must be zero (off) or positive");
    readonly Option<int> checkpointEvery = PresetTrainOption("--checkpoint-every", "checkpoint every N steps (0: only at the end)", t => t.CheckpointEvery, "N").AtLeast(0);
    readonly Option<int> logEvery = PresetTrainOption("--log-every", "log every N steps", t => t.LogEvery, "N").AtLeast(1);

    /// <summary>The options a resumed run accepts; every other one would contradict the checkpoint's configuration.</summary>
    Option[] ResumeMay => [resume, device, output, data, quiet, steps, cacheDir, stopAt, dryRun, overwrite];

    readonly Command command = new("train", "train a model (default: the tiny preset on the built-in corpus)");

    TrainCommand()
    {
        foreach (var o in (Option[])[preset, data, output, resume, device, tokenizer, cacheDir, stopAt, quiet, dryRun, overwrite,
                     residual, linear, dModel, nLayer, nHead, nKvHead, ffnHidden, seqLen, normEps, ropeTheta, initStd,
                     steps, batch, gradAccum, lr, minLrRatio, warmup, weightDecay, beta1, beta2, adamEps, gradClip, decayNormGains,
                     seed, evalEvery, evalBatches, sampleEvery, sampleTokens, temperature, topK, checkpointEvery, logEvery])
            command.Add(o);
        command.SetAction(Run);
    }

    public static Command Create() => new TrainCommand().command;

    /// <summary>A training option whose default is the chosen preset's value; help lists each preset's value where they differ.</summary>
    static Option<T> PresetTrainOption<T>(string name, string description, Func<TrainConfig, T> pick, string helpName = "X") =>
        PresetOption(name, description, p => pick(TrainConfig.ForPreset(p)), helpName);

    /// <summary>A model option whose default is the chosen preset's value.</summary>
    static Option<T> PresetModelOption<T>(string name, string description, Func<ModelConfig, T> pick, string helpName = "N") =>
        PresetOption(name, description, p => pick(ModelConfig.Preset(p, 1, Residual.Post, LinearKind.SddCode)), helpName);

    static Option<T> PresetOption<T>(string name, string description, Func<string, T> pick, string helpName)
    {
        var values = ModelConfig.PresetNames.Select(p => (Preset: p, Value: Format(pick(p)))).ToArray();
        if (values.Select(v => v.Value).Distinct().Count() > 1)
            description += $" (default from --preset: {string.Join(", ", values.Select(v => $"{v.Preset} {v.Value}"))})";
        return new Option<T>(name)
        {
            Description = description,
            HelpName = helpName,
            DefaultValueFactory = r => pick(ChosenPreset(r)),
        };
    }

    /// <summary>The --preset of the command line being parsed (the default preset while help is written).</summary>
    static string ChosenPreset(ArgumentResult r) =>
        r.GetResult("--preset") is OptionResult { Tokens: [{ Value: var p }] } && ModelConfig.PresetNames.Contains(p) ? p : DefaultPreset;

    int Run(ParseResult p)
    {
        ICollective world;
        try
        {
            world = Collective.FromEnvironment();
        }
        catch (MpiException e)
        {
            Console.Error.WriteLine($"sdd: {e.Message}");
            return 1;
        }
        using (world)
        {
            if (world.Size == 1)
                return Run(p, world);
            if (world.Rank != 0)
                Console.SetOut(TextWriter.Null);
            try
            {
                return Run(p, world);
            }
            catch (Exception e)
            {
                var what = e is UsageException or ArgumentException or IOException or DataException or DeviceNotFoundException
                    or Training.Checkpoints.CheckpointException ? e.Message : $"{e.GetType().Name}: {e.Message}";
                Console.Error.WriteLine($"sdd: rank {world.Rank} of {world.Size} failed, stopping every rank: {what}");
                world.Abort(e is UsageException ? 2 : 1);
                return 1;
            }
        }
    }

    int Run(ParseResult p, ICollective world)
    {
        var deviceName = p.GetValue(device)!;
        Tensors.Device.Parse(deviceName); // a misspelt device fails before any data is read
        var requested = deviceName;
        deviceName = Collective.DeviceName(deviceName, world);
        // One process: SIGINT/SIGTERM stop after the step with a checkpoint. Under MPI the launcher's SIGTERM is how a
        // failed rank's abort ends the others, so the default (immediate) termination is kept there.
        using var signals = world.Size == 1 ? RunSignals.ForConsole() : RunSignals.None();
        Device? opened = null;
        TrainingData? loaded = null;
        Trainer? trainer;
        try
        {
            trainer = Start(p, deviceName, world, d => opened = d, d => loaded = d, signals.Token);
        }
        catch
        {
            opened?.Dispose();
            loaded?.Dispose();
            throw;
        }
        using (loaded)
        using (opened)
        using (trainer)
        {
            if (trainer is null)
                return 0; // --dry-run
            var result = trainer.Run();
            Console.WriteLine();
            return RunReport.Print(result, signals, ResumeCommand(p, trainer.CheckpointPath, world.Size == 1 ? opened!.Name : requested));
        }
    }

    /// <summary>The exact command that continues this run (with the options the checkpoint does not record).</summary>
    string ResumeCommand(ParseResult p, string checkpoint, string deviceName)
    {
        var parts = new List<string> { "sdd", "train", "--resume", RunReport.Quote(Path.GetFullPath(checkpoint)), "--device", RunReport.Quote(deviceName) };
        if (p.GetValue(cacheDir) is { } cache)
            parts.AddRange(["--cache-dir", RunReport.Quote(Path.GetFullPath(cache))]);
        if (p.GetValue(data) is { } file)
            parts.AddRange(["--data", RunReport.Quote(Path.GetFullPath(file))]);
        return string.Join(' ', parts);
    }

    /// <summary>
    /// Resolves data and configurations first (cheap, most errors), checks the memory estimate, then opens the
    /// device and builds the trainer (which checks the estimate against the device's memory before it allocates
    /// or creates the folder). Returns null for --dry-run, after printing the estimate.
    /// </summary>
    Trainer? Start(ParseResult p, string deviceName, ICollective world, Action<Device> opened, Action<TrainingData> loaded, CancellationToken cancel)
    {
        var cache = p.GetValue(cacheDir) ?? PreparedData.DefaultCacheDir;
        Device Open()
        {
            var d = Tensors.Device.Open(deviceName);
            opened(d);
            return d;
        }
        if (p.GetValue(resume) is { } resumeArg)
        {
            foreach (var o in command.Options.Where(o => !ResumeMay.Contains(o) && p.Given(o)))
                throw new UsageException($"{o.Name} cannot change a resumed run: the checkpoint's configuration is used (only {string.Join(", ", ResumeMay.Skip(1).Select(m => m.Name))} may be given).");
            var path = CheckpointPath(resumeArg);
            var state = Training.Checkpoints.Checkpoint.ReadState(path);
            var stepsArg = p.Given(steps) ? p.GetValue(steps) : (int?)null;
            RefuseIneffective(p, stepsArg ?? state.Train.Steps, state.Train.SampleEvery);
            var end = Math.Min(stepsArg ?? state.Train.Steps, p.GetValue(stopAt) ?? int.MaxValue);
            if (end <= state.Step)
                throw new ArgumentException(stepsArg is int s && s < state.Step
                    ? $"--steps {s} is below the checkpoint's step {state.Step}: a resumed run only continues. Give --steps above {state.Step}."
                    : $"Nothing to train: the checkpoint is at step {state.Step} and the run would stop at step {end}. Give --steps (and --stop-at) above {state.Step}.");
            var tok = Tokenizers.FromJson(state.TokenizerJson);
            var corpus = LoadData(p.GetValue(data) ?? (state.DataSource == GeneratedCorpus.Name ? null : state.DataSource), tok.Kind, cache, tok);
            loaded(corpus);
            var outDir = p.GetValue(output) ?? Path.GetDirectoryName(Path.GetFullPath(path))!;
            var train = state.Train with { Steps = stepsArg ?? state.Train.Steps };
            PreCheck(state.Model, train, deviceName, p.GetValue(dryRun));
            var d = Open();
            if (p.GetValue(dryRun))
                return DryRun(d, corpus, state.Model, train, outDir, world);
            var trainer = Trainer.Resume(d, path, corpus, outDir, Options(p, world, cancel), stepsArg);
            if (!p.GetValue(quiet))
                Console.WriteLine($"Resuming {path} at step {trainer.Step} on {d}");
            return trainer;
        }
        else
        {
            var presetName = p.GetValue(preset)!;
            RefuseIneffective(p, p.GetValue(steps), p.GetValue(sampleEvery));
            var corpus = LoadData(p.GetValue(data), p.GetValue(tokenizer)!, cache, null);
            loaded(corpus);
            if (p.Given(tokenizer) && corpus.Tokenizer.Kind != p.GetValue(tokenizer))
                throw new DataException($"--tokenizer {p.GetValue(tokenizer)} differs from the {corpus.Tokenizer.Kind} tokenizer that '{corpus.Source}' was prepared with. Leave --tokenizer out, or prepare the data again with it.");
            var model = ResolveModel(p, corpus.Tokenizer.VocabSize);
            var train = ResolveTrain(p) with { Tokenizer = corpus.Tokenizer.Kind };
            model.Validate();
            train.Validate();
            corpus.EnsureLongEnough(model.SeqLen);
            var outDir = p.GetValue(output) ?? Path.Combine("runs", presetName);
            PreCheck(model, train, deviceName, p.GetValue(dryRun));
            var d = Open();
            if (p.GetValue(dryRun))
                return DryRun(d, corpus, model, train, outDir, world);
            var trainer = Trainer.Create(d, model, train, corpus, outDir, Options(p, world, cancel));
            if (!p.GetValue(quiet))
                PrintConfiguration(d, corpus, model, train, outDir, world);
            return trainer;
        }
    }

    /// <summary>An option the run would accept and then ignore is a usage mistake: say why it has no effect.</summary>
    void RefuseIneffective(ParseResult p, int totalSteps, int sampleEvery)
    {
        if (p.GetValue(stopAt) is int stop && stop >= totalSteps)
            throw new UsageException($"--stop-at {stop} is not before the last step ({totalSteps}), so it would change nothing: give a smaller --stop-at or drop it.");
        if (sampleEvery == 0)
            foreach (var o in (Option[])[sampleTokens, temperature, topK])
                if (p.Given(o))
                    throw new UsageException($"{o.Name} only shapes the samples printed during training, and --sample-every is 0 (off): give --sample-every N or drop {o.Name}. (sdd sample has its own {o.Name.Replace("sample-", "", StringComparison.Ordinal)}.)");
    }

    /// <summary>A run folder means its checkpoint.safetensors (as for sample and eval).</summary>
    internal static string CheckpointPath(string fileOrFolder) =>
        Directory.Exists(fileOrFolder) ? Path.Combine(fileOrFolder, Trainer.CheckpointFile) : fileOrFolder;

    TrainerOptions Options(ParseResult p, ICollective world, CancellationToken cancel) => new()
    {
        Collective = world,
        StopAtStep = p.GetValue(stopAt),
        OnStep = p.GetValue(quiet) ? null : Progress.Print,
        Cancellation = cancel,
        Overwrite = p.GetValue(overwrite),
    };

    /// <summary>
    /// The estimate, refused at once, before the device compiles its kernels, when a size overflows or (on the CPU
    /// devices, whose memory is known without opening them) when it does not fit. The trainer checks every device.
    /// Before the device is open its attention is known by name only: <c>cpu</c> is fused, other names are taken as the
    /// kernels' materialised plan, the larger, and only <c>cpu</c> has the fused FFN and packed weights (the trainer and --dry-run estimate
    /// again with the opened device).
    /// </summary>
    static void PreCheck(ModelConfig model, TrainConfig train, string deviceName, bool dryRun)
    {
        var name = deviceName.Trim().ToLowerInvariant();
        var estimate = MemoryEstimate.For(model, train, name == "cpu" ? AttentionStorage.Fused : AttentionStorage.Materialized, fusedFfn: name == "cpu",
            packedWeights: name == "cpu");
        if (!dryRun && name is "cpu" or "ilgpu-cpu")
            estimate.EnsureFits(Tensors.Device.AvailableHostMemoryBytes(), Tensors.Device.AvailableHostMemoryBytes(), hostMemoryDevice: true, deviceName, train);
    }

    static Trainer? DryRun(Device device, TrainingData corpus, ModelConfig model, TrainConfig train, string outDir, ICollective world)
    {
        var estimate = MemoryEstimate.For(model, train, device.Ops.Attention, device.Ops.FusedFfn is not null, device.Ops.WeightPacking is not null);
        PrintConfiguration(device, corpus, model, train, outDir, world);
        Console.WriteLine($"memory     estimate for {device.Name}:");
        Console.WriteLine(estimate.Describe(device.IsHostMemory));
        Console.WriteLine($"  {(device.IsHostMemory ? "host RAM available now" : "device memory"),-46}{MemoryEstimate.Format(device.MemoryBytes),12}");
        estimate.EnsureFits(device, train);
        Console.WriteLine("Dry run: the run fits; nothing was created.");
        return null;
    }

    /// <summary>
    /// Training data from --data: a prepared folder, a folder or glob of llm.c shards (memory-mapped), a text file, or
    /// (null) the built-in corpus. With <paramref name="tokenizer"/> (a resumed run) the data must use that tokenizer.
    /// </summary>
    internal static TrainingData LoadData(string? data, string tokenizerKind, string cacheDir, ITokenizer? tokenizer)
    {
        if (data is null)
            return LoadCorpus(null, tokenizerKind, cacheDir, tokenizer);
        if (!PreparedData.IsShardSource(data))
            return PreparedData.OpenTextFile(data, tokenizerKind, cacheDir, tokenizer, w => Console.Error.WriteLine($"sdd: {w}"));
        var prepared = PreparedData.Open(data, tokenizer);
        if (tokenizer is not null && prepared.Tokenizer.ToJson() != tokenizer.ToJson())
        {
            prepared.Dispose();
            throw new DataException($"'{data}' was prepared with another tokenizer ({prepared.Tokenizer.Kind}, vocab {prepared.Tokenizer.VocabSize}) than the checkpoint's ({tokenizer.Kind}, vocab {tokenizer.VocabSize}). Give the data the run was trained on.");
        }
        return prepared;
    }

    internal static TextCorpus LoadCorpus(string? data, string tokenizerKind, string cacheDir, ITokenizer? tokenizer)
    {
        var corpus = data is null
            ? TextCorpus.FromText(GeneratedCorpus.Generate(), GeneratedCorpus.Name, tokenizerKind, null, tokenizer)
            : TextCorpus.Load(data, tokenizerKind, cacheDir, tokenizer);
        if (corpus.CacheWarning is { } warning)
            Console.Error.WriteLine($"sdd: warning: {warning}");
        return corpus;
    }

    ModelConfig ResolveModel(ParseResult p, int vocab)
    {
        var m = ModelConfig.Preset(p.GetValue(preset)!, vocab, ModelConfig.ParseResidual(p.GetValue(residual)!), ModelConfig.ParseLinear(p.GetValue(linear)!));
        var c = p.GetValue(dModel);
        var nh = p.GetValue(nHead);
        return m with
        {
            DModel = c,
            NLayer = p.GetValue(nLayer),
            NHead = nh,
            NKvHead = p.GetValue(nKvHead) ?? nh,
            FfnHidden = p.GetValue(ffnHidden) ?? ModelConfig.DefaultFfnHidden(c),
            SeqLen = p.GetValue(seqLen),
            NormEps = p.GetValue(normEps),
            RopeTheta = p.GetValue(ropeTheta),
            InitStd = p.GetValue(initStd),
        };
    }

    TrainConfig ResolveTrain(ParseResult p) => TrainConfig.ForPreset(p.GetValue(preset)!) with
    {
        Tokenizer = p.GetValue(tokenizer)!,
        Steps = p.GetValue(steps),
        Batch = p.GetValue(batch),
        GradAccum = p.GetValue(gradAccum),
        Lr = p.GetValue(lr),
        MinLrRatio = p.GetValue(minLrRatio),
        Warmup = p.GetValue(warmup),
        WeightDecay = p.GetValue(weightDecay),
        Beta1 = p.GetValue(beta1),
        Beta2 = p.GetValue(beta2),
        AdamEps = p.GetValue(adamEps),
        GradClip = p.GetValue(gradClip),
        DecayNormGains = p.GetValue(decayNormGains),
        Seed = p.GetValue(seed),
        EvalEvery = p.GetValue(evalEvery),
        EvalBatches = p.GetValue(evalBatches),
        SampleEvery = p.GetValue(sampleEvery),
        SampleTokens = p.GetValue(sampleTokens),
        Temperature = p.GetValue(temperature),
        TopK = p.GetValue(topK),
        CheckpointEvery = p.GetValue(checkpointEvery),
        LogEvery = p.GetValue(logEvery),
    };

    static void PrintConfiguration(Device device, TrainingData corpus, ModelConfig m, TrainConfig t, string outDir, ICollective world)
    {
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine(world.Size == 1 ? $"device     {device}" : $"device     {device} on rank 0 of {world.Size} MPI processes");
        Console.WriteLine($"data       {corpus.Source}: {corpus.Train.Count + corpus.Validation.Count:N0} {corpus.Tokenizer.Kind} tokens (vocab {corpus.Tokenizer.VocabSize}), {corpus.Train.Count:N0} train / {corpus.Validation.Count:N0} validation{(corpus.Train is ShardTokenSplit ? ", memory-mapped shards" : "")}");
        Console.WriteLine($"model      {m.ToJson()}");
        Console.WriteLine($"training   {t.ToJson()}");
        Console.WriteLine($"output     {Path.GetFullPath(outDir)}");
        Console.WriteLine(string.Create(inv, $"tokens/step {(long)t.Batch * m.SeqLen * t.GradAccum * world.Size}, uniform baseline loss ln(V) = {Math.Log(m.Vocab):F3}"));
    }
}
