// The training loop: seeded batches, gradient accumulation, global-norm clipping and AdamW (spec §6),
// evaluation on fixed validation batches, sampling, checkpoints with exact resume, a JSON-lines log and a
// loss plot. One host read-back per step (a small stats vector: loss, gradient norm, per-layer norms).
// Data parallel under MPI (docs/distributed.md): rank r computes the micro-batches r, r+N, ... of the N·k the
// step draws, the gradient arena is summed over ranks in one allreduce, every rank applies the same AdamW,
// and only rank 0 writes files.
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using SddIlgpu.Layers;
using SddIlgpu.Tensors;
using SddIlgpu.Training.Checkpoints;
using SddIlgpu.Training.Data;
using SddIlgpu.Training.Distributed;
using SddIlgpu.Training.Metrics;

namespace SddIlgpu.Training;

/// <summary>Trains one model on one data set (not owned), writing its outputs into one folder.</summary>
public sealed class Trainer : IDisposable
{
    public const string CheckpointFile = "checkpoint.safetensors";
    public const string LogFile = "log.jsonl";
    public const string PlotFile = "loss.png";

    readonly Device device;
    readonly TrainConfig train;
    readonly TrainingData data;
    readonly TrainerOptions options;
    readonly ICollective world;
    readonly ModelWeights weights;
    readonly Model model;
    readonly AdamW optimizer;
    readonly BatchSampler trainBatches, valBatches;
    readonly Arena statsArena;
    readonly Tensor stats, stepLoss, gradNorm, evalLoss;
    readonly Parameter[] linears;
    readonly float[] hostTokens, hostTargets, hostStats, hostEval = new float[1];
    readonly float[]? hostGrads;
    readonly List<StepRecord> log = [];
    readonly string outDir;
    readonly RunFolder? folder;
    TextSampler? sampler;
    int step;
    int? checkpointStep;

    Trainer(Device device, ModelConfig modelConfig, TrainConfig train, TrainingData data, string outDir, TrainerOptions? options, RunFolderMode mode)
    {
        modelConfig.Validate();
        train.Validate();
        if (data.Tokenizer.VocabSize != modelConfig.Vocab)
            throw new ArgumentException($"The model's vocabulary ({modelConfig.Vocab}) differs from the tokenizer's ({data.Tokenizer.VocabSize}).");
        data.EnsureLongEnough(modelConfig.SeqLen);
        if (options?.StopAtStep < 1)
            throw new ArgumentException($"--stop-at must be at least 1; got {options.StopAtStep}.");
        this.options = options ?? new TrainerOptions();
        world = this.options.Collective ?? SingleProcess.Instance;
        MemoryEstimate.For(modelConfig, train, device.Ops.Attention, device.Ops.FusedFfn is not null, device.Ops.WeightPacking is not null).EnsureFits(device, train); // before any allocation or folder
        if (world.Rank == 0)
            folder = RunFolder.Open(outDir, mode); // only rank 0 writes
        this.device = device;
        this.train = train;
        this.data = data;
        this.outDir = outDir;
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
        trainBatches = new BatchSampler(data.Train, train.Batch, modelConfig.SeqLen, train.Seed, "train", modelConfig.Vocab);
        valBatches = new BatchSampler(data.Validation, train.Batch, modelConfig.SeqLen, train.Seed, "validation", modelConfig.Vocab);
        stats = statsArena.Take(2 + linears.Length, "stats");
        stepLoss = stats.Slice(0, 1, "stats.loss");
        gradNorm = stats.Slice(1, 1, "stats.grad_norm_sq");
        evalLoss = statsArena.Take(1, "eval.loss");
        hostTokens = new float[train.Batch * modelConfig.SeqLen];
        hostTargets = new float[hostTokens.Length];
        hostStats = new float[stats.Length];
        if (world.Size > 1 && !device.IsHostMemory)
            hostGrads = new float[weights.Grads.Length];
    }

    public ModelWeights Weights => weights;
    public ModelConfig ModelConfig => weights.Config;
    public TrainConfig TrainConfig => train;
    public int Step => step;
    public string CheckpointPath => Path.Combine(outDir, CheckpointFile);
    public string LogPath => Path.Combine(outDir, LogFile);

    /// <summary>Stale temporaries of killed writes removed from the output folder at start.</summary>
    public IReadOnlyList<string> RemovedTemporaries => folder?.RemovedTemporaries ?? [];

    /// <summary>Elements of the trainer's stats arena: loss, ‖g‖², one norm per linear weight, the eval loss.</summary>
    public static int StatsLength(int linearWeights) => checked(3 + linearWeights);

    /// <summary>Whether this process writes the outputs (rank 0, or the only process).</summary>
    bool Writes => world.Rank == 0;

    /// <summary>A new run from seeded initial weights.</summary>
    public static Trainer Create(Device device, ModelConfig model, TrainConfig train, TrainingData data, string outDir, TrainerOptions? options = null)
    {
        var t = new Trainer(device, model, train, data, outDir, options,
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
    public static Trainer Resume(Device device, string checkpoint, TrainingData data, string outDir, TrainerOptions? options = null,
        int? steps = null, int? evalBatches = null)
    {
        var state = Checkpoint.ReadState(checkpoint);
        var worldSize = options?.Collective?.Size ?? 1;
        if (state.WorldSize != worldSize)
            throw new CheckpointException(
                $"Checkpoint '{checkpoint}' was written by a run of {Processes(state.WorldSize)}; this run has {Processes(worldSize)}. " +
                $"Resume it with {(state.WorldSize == 1 ? "one process (no mpirun)" : $"'mpirun -np {state.WorldSize}'")}: the batches each process draws and the order " +
                "the gradients are summed in depend on the process count, so another count could not continue the run exactly.");
        if (steps < state.Step)
            throw new ArgumentException($"--steps {steps} is below the checkpoint's step {state.Step}: a resumed run only continues. Give --steps above {state.Step}.");
        var train = state.Train with { Steps = steps ?? state.Train.Steps, EvalBatches = evalBatches ?? state.Train.EvalBatches };
        var sameFolder = Path.GetDirectoryName(Path.GetFullPath(checkpoint)) == Path.TrimEndingDirectorySeparator(Path.GetFullPath(outDir));
        var mode = sameFolder ? RunFolderMode.Resume : options?.Overwrite == true ? RunFolderMode.Overwrite : RunFolderMode.New;
        var t = new Trainer(device, state.Model, train, data, outDir, options, mode);
        try
        {
            Checkpoint.Load(checkpoint, t.weights, t.optimizer);
            t.step = state.Step;
            if (Path.GetFullPath(checkpoint) == Path.GetFullPath(t.CheckpointPath))
                t.checkpointStep = state.Step;
            t.trainBatches.Position = state.TrainPosition;
            t.RestoreLog(state.Step, t.Writes);
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
        var tokensPerStep = (double)train.Batch * ModelConfig.SeqLen * train.GradAccum * world.Size;
        var stepSeconds = new List<double>();
        var wall = Stopwatch.StartNew();
        double? lastVal = null;
        var diverged = false;
        var interrupted = false;
        using var logWriter = Writes ? new StreamWriter(LogPath, append: true) { AutoFlush = true } : null;
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
            if (!diverged && Writes && train.SampleEvery > 0 && (step % train.SampleEvery == 0 || step == stopAt))
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
                logWriter?.WriteLine(record.ToJson());
                var mean = Median(stepSeconds);
                if (Writes)
                    options.OnStep?.Invoke(record, new TrainProgress(step, train.Steps, mean, mean * (stopAt - step)));
            }
            if (diverged && options.StopOnDivergence)
                break;
            if (step < stopAt && StopRequested())
            {
                interrupted = true;
                break;
            }
            if (train.CheckpointEvery > 0 && step % train.CheckpointEvery == 0 && step != stopAt)
            {
                VerifyReplicasAgree();
                SaveCheckpoint();
            }
        }
        logWriter?.Dispose();
        VerifyReplicasAgree();
        if (!diverged)
            SaveCheckpoint();
        string? plot = null;
        if (Writes && options.WritePlot && log.Count > 0)
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

    /// <summary>
    /// One optimizer step: accumulate gradients over this rank's micro-batches, sum them over ranks, clip,
    /// AdamW; one read-back. The loss scale 1/(B·T·k·N) makes the summed gradient the mean over all N·k
    /// micro-batches, exactly as one process with N·k accumulation steps scales each of them.
    /// </summary>
    void TrainStep(float lr, bool withLayerNorms)
    {
        var ops = device.Ops;
        var microBatches = train.GradAccum * world.Size;
        var scale = 1f / ((long)train.Batch * ModelConfig.SeqLen * microBatches); // B·T·k·N may pass int range
        var first = trainBatches.Position;
        weights.ZeroGrad();
        ops.Elementwise.Fill(stepLoss, 0f);
        for (var micro = world.Rank; micro < microBatches; micro += world.Size)
        {
            DrawBatch(trainBatches, first, micro);
            model.Upload(hostTokens, hostTargets);
            model.ForwardLoss(scale);
            model.Backward();
            ops.Elementwise.Axpy(1f / microBatches, model.Loss, stepLoss);
        }
        trainBatches.Position = first + (long)microBatches * train.Batch;
        AllReduceGradients();
        if (withLayerNorms)
            for (var i = 0; i < linears.Length; i++)
                ops.Reduction.SumSquares(linears[i].Grad, stats, 2 + i);
        optimizer.Step(lr);
        ops.Elementwise.Copy(optimizer.GradNormSquared, gradNorm);
        stats.Download(hostStats);
        world.AllReduceSum(hostStats.AsSpan(0, 1)); // the loss; the norms are already those of the summed gradient
    }

    /// <summary>
    /// The one place batches are drawn: batch <paramref name="index"/> counted from draw position
    /// <paramref name="first"/> is the batch the index-th <see cref="BatchSampler.Next"/> from there would give,
    /// so ranks taking every N-th index together see exactly one process's sequence.
    /// </summary>
    void DrawBatch(BatchSampler sampler, long first, int index)
    {
        sampler.Position = first + (long)index * train.Batch;
        sampler.Next(hostTokens, hostTargets);
    }

    /// <summary>
    /// Collective check, before each checkpoint, that every rank holds bit-identical weights (they apply the
    /// same AdamW to the same summed gradients, so they must): rank 0's SHA-256 of the weight arena is
    /// broadcast, and every rank stops if any rank's differs, so no checkpoint is written from a diverged replica.
    /// </summary>
    void VerifyReplicasAgree()
    {
        if (world.Size == 1)
            return;
        var mine = SHA256.HashData(MemoryMarshal.AsBytes(weights.Values.ToArray().AsSpan()));
        var root = mine.ToArray();
        world.Broadcast(root);
        Span<double> mismatches = [root.AsSpan().SequenceEqual(mine) ? 0 : 1];
        world.AllReduceSum(mismatches);
        if (mismatches[0] > 0)
            throw new InvalidOperationException(
                $"The weights of {mismatches[0]} rank(s) differ from rank 0's after step {step}: the gradient allreduce did not give every rank " +
                "the same bits (an MPI library whose reduction order differs between ranks?). Stopping before a checkpoint is written; see docs/distributed.md.");
    }

    /// <summary>Sums the gradient arena over ranks in place, staged through host memory when the device has its own.</summary>
    void AllReduceGradients()
    {
        if (world.Size == 1)
            return;
        var grads = weights.Grads;
        if (hostGrads is null)
        {
            device.Synchronize();
            world.AllReduceSum(grads.HostSpan());
        }
        else
        {
            grads.Download(hostGrads);
            world.AllReduceSum(hostGrads);
            grads.Upload(hostGrads);
        }
    }

    /// <summary>
    /// Mean loss over the fixed validation batches (the same batches at every evaluation). Collective: rank r
    /// evaluates batches r, r+N, ... and the partial means are summed over ranks.
    /// </summary>
    public double Evaluate()
    {
        var ops = device.Ops;
        ops.Elementwise.Fill(evalLoss, 0f);
        for (var i = world.Rank; i < train.EvalBatches; i += world.Size)
        {
            DrawBatch(valBatches, 0, i);
            model.Upload(hostTokens, hostTargets);
            model.ForwardLoss(0f);
            ops.Elementwise.Axpy(1f / train.EvalBatches, model.Loss, evalLoss);
        }
        evalLoss.Download(hostEval);
        world.AllReduceSum(hostEval);
        return hostEval[0];
    }

    /// <summary>Generates text from the current weights.</summary>
    public string Sample(string prompt, int tokens, ulong seed)
    {
        sampler ??= new TextSampler(weights);
        return sampler.Generate(data.Tokenizer, prompt, tokens, train.Temperature, train.TopK, seed, data.StartToken);
    }

    /// <summary>Writes the checkpoint (atomically, on rank 0 only) and returns its path.</summary>
    public string SaveCheckpoint()
    {
        if (!Writes)
            return CheckpointPath;
        var state = new CheckpointState(ModelConfig, train, step, trainBatches.Position, optimizer.StepCount,
            TokenizerJson.Write(data.Tokenizer, data.StartToken), data.Source, world.Size);
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

    void RestoreLog(int upToStep, bool rewrite)
    {
        if (!File.Exists(LogPath))
            return;
        var kept = StepRecord.ReadLog(LogPath).Where(r => r.Step <= upToStep).ToList();
        log.AddRange(kept);
        if (rewrite)
            AtomicFile.WriteAllText(LogPath, string.Concat(kept.Select(r => r.ToJson() + "\n")));
    }

    /// <summary>Whether the run should stop (the token was cancelled); every rank agrees, so no collective is left waiting.</summary>
    bool StopRequested()
    {
        var stop = options.Cancellation.IsCancellationRequested;
        if (world.Size == 1)
            return stop;
        Span<double> flag = [stop ? 1 : 0];
        world.AllReduceSum(flag);
        return flag[0] > 0;
    }

    static string Processes(int n) => n == 1 ? "one process" : $"{n} processes";

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
        folder?.Dispose();
    }
}
