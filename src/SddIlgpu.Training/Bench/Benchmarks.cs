// sdd bench: GEMM, attention, RMS norm and full training steps of the presets on one device. MFU is
// FLOPs per token (6·N + 12·L·NH·HS·T, the PaLM/nanoGPT count with the full T×T attention) × tokens/s over
// the device's FP32 peak (PeakFlops).
using SddIlgpu.Layers;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Training.Bench;

/// <summary>What to run: presets for model-shaped GEMMs, attention, norms and the training step; Quick shrinks everything.</summary>
public sealed record BenchOptions(IReadOnlyList<string> Presets, bool Quick = false, double? PeakTflops = null);

public static class Benchmarks
{
    public static readonly string[] DefaultPresets = ["tiny", "shakespeare-cpu", "baby-gpt"];

    /// <summary>The character vocabulary of tiny Shakespeare (what the presets train on by default).</summary>
    public const int CharVocab = 65;

    /// <summary>Sequences per step of each preset: the preset's training default.</summary>
    public static int PresetBatch(string preset) =>
        ModelConfig.PresetNames.Contains(preset) ? TrainConfig.ForPreset(preset).Batch
            : throw new ArgumentException($"Unknown preset '{preset}'. Presets: {string.Join(", ", DefaultPresets)}.");

    public static ModelConfig PresetConfig(string preset) => ModelConfig.Preset(preset, CharVocab, Residual.Post, LinearKind.SddCode);

    /// <summary>6·N + 12·L·NH·HS·T: forward and backward FLOPs per token of the matrices and of attention.</summary>
    public static double FlopsPerToken(ModelConfig c, long parameters) =>
        6.0 * parameters + 12.0 * c.NLayer * c.NHead * c.HeadDim * c.SeqLen;

    /// <summary>Runs every benchmark; records and notes (skips, failures, the peak's source) stream out as they come.</summary>
    public static IReadOnlyList<BenchRecord> Run(Device device, BenchOptions o, Action<BenchRecord>? onRecord = null, Action<string>? onNote = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(o);
        var records = new List<BenchRecord>();
        var dev = device.ToString();
        void Add(string name, string metric, double value, string unit)
        {
            var r = new BenchRecord(name, dev, metric, value, unit);
            records.Add(r);
            onRecord?.Invoke(r);
        }
        void Note(string s) => onNote?.Invoke(s);
        var slow = device.Kind == BackendKind.IlgpuCpu;
        var kernelPlan = o.Quick ? new BenchPlan(1, 3, 1) : new BenchPlan(2, 7, 3);
        var presets = o.Presets.Where(p => !(slow && p == "baby-gpt")).ToList();
        if (presets.Count < o.Presets.Count)
            Note("baby-gpt skipped on ilgpu-cpu (simulated GPU threads: minutes per step); use --device cpu or a GPU.");

        int[] squares = o.Quick || slow ? [256, 512] : [256, 512, 1024, 2048];
        var gemms = squares.Select(n => new GemmCase("square", new GemmSpec(n, n, n)))
            .Concat(presets.Where(p => p != "tiny").SelectMany(p => KernelBench.ModelGemms(p, PresetConfig(p), PresetBatch(p))));
        foreach (var g in gemms)
        {
            var (gflops, problem) = KernelBench.Gemm(device, g, kernelPlan);
            if (gflops is { } v)
                Add(g.Name, "throughput", v, "GFLOP/s");
            else
                Note($"{g.Name}: {problem}");
        }
        foreach (var p in presets)
        {
            var c = PresetConfig(p);
            var b = PresetBatch(p);
            Add($"attention/{p}", "fwd+bwd time", KernelBench.Attention(device, new AttentionShape(b, c.SeqLen, c.NHead, c.NKvHead, c.HeadDim), kernelPlan), "ms");
            var (fwd, bwd) = KernelBench.RmsNorm(device, b * c.SeqLen, c.DModel, kernelPlan);
            Add($"rmsnorm/{p}", "forward bandwidth", fwd, "GB/s");
            Add($"rmsnorm/{p}", "backward bandwidth", bwd, "GB/s");
        }

        var (peak, source) = PeakFlops.For(device, o.PeakTflops);
        Note(peak is { } pk ? $"FP32 peak {pk / 1e12:F2} TFLOPS ({source})" : $"MFU not reported: {source}");
        foreach (var p in presets)
        {
            var c = PresetConfig(p);
            var b = PresetBatch(p);
            var big = p == "baby-gpt" && device.IsHostMemory;
            var plan = o.Quick ? new BenchPlan(1, 2, 2) : big ? new BenchPlan(1, 3, 30) : new BenchPlan(2, 7, 10);
            var (seconds, parameters) = TrainStep(device, c, b, plan);
            var tokensPerSecond = b * c.SeqLen / seconds;
            Add($"train-step/{p}", "throughput", tokensPerSecond, "tokens/s");
            Add($"train-step/{p}", "step time", seconds * 1e3, "ms");
            if (peak is { } pf)
                Add($"train-step/{p}", "mfu", 100 * FlopsPerToken(c, parameters) * tokensPerSecond / pf, "%");
        }
        return records;
    }

    /// <summary>
    /// Median seconds of one training step (ZeroGrad, upload tokens and targets, ForwardLoss, Backward, AdamW,
    /// one read-back of the loss) of the post/sdd-code model, and its parameter count.
    /// </summary>
    public static (double Seconds, long Parameters) TrainStep(Device device, ModelConfig c, int batch, BenchPlan plan)
    {
        ArgumentNullException.ThrowIfNull(c);
        using var weights = new ModelWeights(device, c);
        weights.Initialize(1337);
        using var model = new Model(weights, batch);
        using var optimizer = new AdamW(weights, new AdamWConfig());
        var rng = new System.Random(5);
        var tokens = new float[batch * c.SeqLen];
        var targets = new float[tokens.Length];
        for (var i = 0; i < tokens.Length; i++)
        {
            tokens[i] = rng.Next(c.Vocab);
            targets[i] = rng.Next(c.Vocab);
        }
        var loss = new float[1];
        var gradScale = 1f / tokens.Length;
        var (median, _) = BenchTiming.Median(device, () =>
        {
            weights.ZeroGrad();
            model.Upload(tokens, targets);
            model.ForwardLoss(gradScale);
            model.Backward();
            optimizer.Step(1e-3f);
            model.Loss.Download(loss);
        }, plan.Warmup, plan.Reps, plan.BudgetSeconds);
        if (!float.IsFinite(loss[0]))
            throw new InvalidOperationException($"The benchmark step's loss is {loss[0]}: the training step computes garbage on {device.Name}; run 'sdd doctor'.");
        return (median, weights.Count);
    }
}
