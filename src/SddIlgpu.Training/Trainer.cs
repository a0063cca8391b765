// The training loop: seeded batches, gradient accumulation, global-norm clipping and AdamW (spec §6),
// evaluation on fixed validation batches, sampling, checkpoints with exact resume, a JSON-lines log and a
// loss plot. One host read-back per step (a small stats vector: loss, gradient norm, per-layer norms).
using System.Diagnostics;
using SddIlgpu.Layers;
using SddIlgpu.Tensors;
using SddIlgpu.Training.Checkpoints;
using SddIlgpu.Training.Data;
using SddIlgpu.Training.Metrics;

namespace SddIlgpu.Training;

/// <summary>Trains one model on one corpus, writing its outputs into one folder.</summary>
public sealed class Trainer : IDisposable
{
    public const string CheckpointFile = "checkpoint.safetensors";
    public const string LogFile = "log.jsonl";
    public const string PlotFile = "loss.png";

    readonly Device device;
    readonly TrainConfig train;
    readonly TextCorpus corpus;
    readonly TrainerOptions options;
    readonly ModelWeights weights;
    readonly Model model;
    readonly AdamW optimizer;
    readonly BatchSampler trainBatches, valBatches;
    readonly Arena statsArena;
    readonly Tensor stats, stepLoss, gradNorm, evalLoss;
    readonly Parameter[] linears;
    readonly float[] hostTokens, hostTargets, hostStats, hostEval = new float[1];
    readonly List<StepRecord> log = [];
    readonly string outDir;
    readonly RunFolder folder;
    TextSampler? sampler;
    int step;
    int? checkpointStep;

    Trainer(Device device, ModelConfig modelConfig, TrainConfig train, TextCorpus corpus, string outDir, TrainerOptions? options, RunFolderMode mode)
    {
        modelConfig.Validate();
        train.Validate();
        if (corpus.Tokenizer.VocabSize != modelConfig.Vocab)
            throw new ArgumentException($"The model's vocabulary ({modelConfig.Vocab}) differs from the tokenizer's ({corpus.Tokenizer.VocabSize}).");
        corpus.EnsureLongEnough(modelConfig.SeqLen);
        if (options?.StopAtStep < 1)
            throw new ArgumentException($"--stop-at must be at least 1; got {options.StopAtStep}.");
        MemoryEstimate.For(modelConfig, train).EnsureFits(device, train); // before any allocation or folder
        folder = RunFolder.Open(outDir, mode);
        this.device = device;
        this.train = train;
        this.corpus = corpus;
        this.outDir = outDir;
        this.options = options ?? new TrainerOptions();
        try
        {
            weights = new ModelWeights(device, modelConfig);
            model = new Model(weights, train.Batch);
            optimizer = new AdamW(weights, new AdamWConfig((float)train.Lr, (float)train.WeightDecay, (float)train.Beta1,
                (float)train.Beta2, (float)train.AdamEps, (float)train.GradClip, train.DecayNormGains));
            linears = [.. weights.Parameters.Where(p => p.IsLinearWeight)];
            statsArena = device.Allocate(StatsLength(linears.Length), "trainer.stats");
        }
        catch
        {
            Dispose(); // what was allocated, and the folder's lock
            throw;
        }
        trainBatches = new BatchSampler(corpus.Train, train.Batch, modelConfig.SeqLen, train.Seed, "train");
        valBatches = new BatchSampler(corpus.Validation, train.Batch, modelConfig.SeqLen, train.Seed, "validation");
        stats = statsArena.Take(2 + linears.Length, "stats");
        stepLoss = stats.Slice(0, 1, "stats.loss");
        gradNorm = stats.Slice(1, 1, "stats.grad_norm_sq");
        evalLoss = statsArena.Take(1, "eval.loss");
        hostTokens = new float[train.Batch * modelConfig.SeqLen];
        hostTargets = new float[hostTokens.Length];
        hostStats = new float[stats.Length];
    }

    public ModelWeights Weights => weights;
    public ModelConfig ModelConfig => weights.Config;
    public TrainConfig TrainConfig => train;
    public int Step => step;
    public string CheckpointPath => Path.Combine(outDir, CheckpointFile);
    public string LogPath => Path.Combine(outDir, LogFile);

    /// <summary>Stale temporaries of killed writes removed from the output folder at start.</summary>
    public IReadOnlyList<string> RemovedTemporaries => folder.RemovedTemporaries;

    /// <summary>Elements of the trainer's stats arena: loss, ‖g‖², one norm per linear weight, the eval loss.</summary>
    public static int StatsLength(int linearWeights) => checked(3 + linearWeights);

    /// <summary>A new run from seeded initial weights.</summary>
    public static Trainer Create(Device device, ModelConfig model, TrainConfig train, TextCorpus corpus, string outDir, TrainerOptions? options = null)
    {
        var t = new Trainer(device, model, train, corpus, outDir, options,
            options?.Overwrite == true ? RunFolderMode.Overwrite : RunFolderMode.New);
        try
        {
            t.weights.Initialize(train.Seed);
            return t;
        }
        catch
        {
            t.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Continues a run from a checkpoint: weights, moments, step and data position are restored exactly, so
    /// the continued run equals an uninterrupted one bit for bit on the same device. <paramref name="steps"/>
    /// lengthens the schedule (it may not be below the checkpoint's step: <see cref="ArgumentException"/>);
    /// <paramref name="evalBatches"/> changes how many validation batches <see cref="Evaluate"/> averages.
    /// </summary>
    public static Trainer Resume(Device device, string checkpoint, TextCorpus corpus, string outDir, TrainerOptions? options = null,
        int? steps = null, int? evalBatches = null)
    {
        var state = Checkpoint.ReadState(checkpoint);
        if (steps < state.Step)
            throw new ArgumentException($"--steps {steps} is below the checkpoint's step {state.Step}: a resumed run only continues. Give --steps above {state.Step}.");
        var train = state.Train with { Steps = steps ?? state.Train.Steps, EvalBatches = evalBatches ?? state.Train.EvalBatches };
        var sameFolder = Path.GetDirectoryName(Path.GetFullPath(checkpoint)) == Path.TrimEndingDirectorySeparator(Path.GetFullPath(outDir));
        var mode = sameFolder ? RunFolderMode.Resume : options?.Overwrite == true ? RunFolderMode.Overwrite : RunFolderMode.New;
        var t = new Trainer(device, state.Model, train, corpus, outDir, options, mode);
        try
        {
            Checkpoint.Load(checkpoint, t.weights, t.optimizer);
            t.step = state.Step;
            if (Path.GetFullPath(checkpoint) == Path.GetFullPath(t.CheckpointPath))
                t.checkpointStep = state.Step;
            t.trainBatches.Position = state.TrainPosition;
            t.RestoreLog(state.Step);
            return t;
        }
        catch
        {
            t.Dispose();
            throw;
        }
    }

    /// <summary>Trains to the configured number of steps (or <see cref="TrainerOptions.StopAtStep"/>).</summary>
    public TrainResult Run()
    {
        var stopAt = Math.Min(train.Steps, options.StopAtStep ?? int.MaxValue);
        var tokensPerStep = (double)train.Batch * ModelConfig.SeqLen * train.GradAccum;
        var stepSeconds = new List<double>();
        var wall = Stopwatch.StartNew();
        double? lastVal = null;
        var diverged = false;
        var interrupted = false;
        using var logWriter = new StreamWriter(LogPath, append: true) { AutoFlush = true };
        while (step < stopAt)
        {
            var logThis = (step + 1) % train.LogEvery == 0 || step + 1 == stopAt;
            var clock = Stopwatch.StartNew();
            var lr = LrSchedule.At(step, train.Steps, train.Lr, train.Warmup, train.MinLrRatio);
            TrainStep((float)lr, logThis);
            var seconds = clock.Elapsed.TotalSeconds;
            stepSeconds.Add(seconds);
            step++;
            var loss = hostStats[0];
            diverged = !float.IsFinite(loss);
            double? val = null;
            if (!diverged && ((train.EvalEvery > 0 && step % train.EvalEvery == 0) || step == stopAt))
                lastVal = val = Evaluate();
            string? sample = null;
            if (!diverged && train.SampleEvery > 0 && (step % train.SampleEvery == 0 || step == stopAt))
                sample = Sample("", train.SampleTokens, train.Seed + (ulong)step);
            if (logThis || val is not null || diverged)
            {
                var record = new StepRecord
                {
                    Step = step,
                    Loss = loss,
                    ValLoss = val,
                    Lr = lr,
                    GradNorm = Math.Sqrt(hostStats[1]),
                    TokensPerSecond = tokensPerStep / seconds,
                    ElapsedSeconds = wall.Elapsed.TotalSeconds,
                    LayerGradNorms = logThis ? LayerNorms() : null,
                    Sample = sample,
                };
                log.Add(record);
                logWriter.WriteLine(record.ToJson());
                var mean = Median(stepSeconds);
                options.OnStep?.Invoke(record, new TrainProgress(step, train.Steps, mean, mean * (stopAt - step)));
            }
            if (diverged && options.StopOnDivergence)
                break;
            if (options.Cancellation.IsCancellationRequested && step < stopAt)
            {
                interrupted = true;
                break;
            }
            if (train.CheckpointEvery > 0 && step % train.CheckpointEvery == 0 && step != stopAt)
                SaveCheckpoint();
        }
        logWriter.Dispose();
        if (!diverged)
            SaveCheckpoint();
        string? plot = null;
        if (options.WritePlot && log.Count > 0)
        {
            plot = Path.Combine(outDir, PlotFile);
            LossPlot.Write(plot, log, $"{ModelConfig.Name(ModelConfig.Residual)}/{ModelConfig.Name(ModelConfig.Linear)}, L={ModelConfig.NLayer}, C={ModelConfig.DModel}");
        }
        var median = Median(stepSeconds);
        return new TrainResult(step, log.Count > 0 ? log[^1].Loss : double.NaN, lastVal, diverged,
            median > 0 ? tokensPerStep / median : 0, median, checkpointStep is null ? null : CheckpointPath, LogPath, plot, log)
        {
            Interrupted = interrupted,
            CheckpointStep = checkpointStep,
        };
    }

    /// <summary>One optimizer step: accumulate gradients over micro-batches, clip, AdamW; one read-back.</summary>
    void TrainStep(float lr, bool withLayerNorms)
    {
        var ops = device.Ops;
        var scale = 1f / ((long)train.Batch * ModelConfig.SeqLen * train.GradAccum); // B·T·accum may pass int range
        weights.ZeroGrad();
        ops.Elementwise.Fill(stepLoss, 0f);
        for (var micro = 0; micro < train.GradAccum; micro++)
        {
            trainBatches.Next(hostTokens, hostTargets);
            model.Tokens.Upload(hostTokens);
            model.Targets.Upload(hostTargets);
            model.ForwardLoss(scale);
            model.Backward();
            ops.Elementwise.Axpy(1f / train.GradAccum, model.Loss, stepLoss);
        }
        if (withLayerNorms)
            for (var i = 0; i < linears.Length; i++)
                ops.Reduction.SumSquares(linears[i].Grad, stats, 2 + i);
        optimizer.Step(lr);
        ops.Elementwise.Copy(optimizer.GradNormSquared, gradNorm);
        stats.Download(hostStats);
    }

    /// <summary>Mean loss over the fixed validation batches (the same batches at every evaluation).</summary>
    public double Evaluate()
    {
        var ops = device.Ops;
        var saved = valBatches.Position;
        valBatches.Position = 0;
        ops.Elementwise.Fill(evalLoss, 0f);
        for (var i = 0; i < train.EvalBatches; i++)
        {
            valBatches.Next(hostTokens, hostTargets);
            model.Tokens.Upload(hostTokens);
            model.Targets.Upload(hostTargets);
            model.ForwardLoss(0f);
            ops.Elementwise.Axpy(1f / train.EvalBatches, model.Loss, evalLoss);
        }
        evalLoss.Download(hostEval);
        valBatches.Position = saved;
        return hostEval[0];
    }

    /// <summary>Generates text from the current weights.</summary>
    public string Sample(string prompt, int tokens, ulong seed)
    {
        sampler ??= new TextSampler(weights);
        return sampler.Generate(corpus.Tokenizer, prompt, tokens, train.Temperature, train.TopK, seed);
    }

    /// <summary>Writes the checkpoint (atomically) and returns its path.</summary>
    public string SaveCheckpoint()
    {
        var state = new CheckpointState(ModelConfig, train, step, trainBatches.Position, optimizer.StepCount,
            corpus.Tokenizer.ToJson(), corpus.Source);
        Checkpoint.Save(CheckpointPath, weights, optimizer, state);
        checkpointStep = step;
        return CheckpointPath;
    }

    Dictionary<string, double> LayerNorms()
    {
        var d = new Dictionary<string, double>(linears.Length);
        for (var i = 0; i < linears.Length; i++)
            d[linears[i].Name] = Math.Sqrt(hostStats[2 + i]);
        return d;
    }

    void RestoreLog(int upToStep)
    {
        if (!File.Exists(LogPath))
            return;
        var kept = StepRecord.ReadLog(LogPath).Where(r => r.Step <= upToStep).ToList();
        log.AddRange(kept);
        AtomicFile.WriteAllText(LogPath, string.Concat(kept.Select(r => r.ToJson() + "\n")));
    }

    static double Median(List<double> xs)
    {
        if (xs.Count == 0)
            return 0;
        var s = xs.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : 0.5 * (s[s.Length / 2 - 1] + s[s.Length / 2]);
    }

    public void Dispose()
    {
        // Null-tolerant: the constructor calls this when an allocation fails part-way.
        sampler?.Dispose();
        statsArena?.Dispose();
        optimizer?.Dispose();
        model?.Dispose();
        weights?.Dispose();
        folder.Dispose();
    }
}
