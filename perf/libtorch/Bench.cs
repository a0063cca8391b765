// Timing modes of the libtorch 2.10 anchor (issue 14): a full training step of a preset, the step replayed
// from a torch_cpu.py --export file (the identity proof), fused attention forward+backward, and the
// accumulating weight-gradient GEMM C += Aᵀ·B. Plain loops, medians; float32 on the CPU.
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using SddIlgpu.Layers;
using SddIlgpu.Training.Bench;
using TorchSharp;
using static TorchSharp.torch;

namespace SddIlgpu.LibtorchBench;

public static class Bench
{
    /// <summary>AdamW and clipping of the timed step, as HYPER in perf/cpu/torch_cpu.py.</summary>
    public const double Lr = 1e-3, Beta1 = 0.9, Beta2 = 0.95, Eps = 1e-8, WeightDecay = 0.1, Clip = 1.0;
    public const int Vocab = 65;

    /// <summary>Batch of each preset in the comparison (perf/cpu/compare.sh).</summary>
    public static readonly (string Preset, int Batch)[] PresetBatches = [("tiny", 8), ("shakespeare-cpu", 12), ("baby-gpt", 4)];

    static ModelConfig Preset(string name) => ModelConfig.Preset(name, Vocab, Residual.Post, LinearKind.SddCode);

    static optim.Optimizer AdamW(SddTorchModel model) =>
        optim.AdamW(model.Parameters.Select(p => p.Value), Lr, Beta1, Beta2, Eps, WeightDecay);

    /// <summary>One training step: forward, mean cross-entropy, backward, global-norm clip, AdamW. Returns the loss.</summary>
    static float TrainStep(SddTorchModel model, optim.Optimizer opt, Tensor tokens, Tensor targets)
    {
        using var scope = NewDisposeScope();
        opt.zero_grad();
        var loss = model.Loss(tokens, targets);
        loss.backward();
        nn.utils.clip_grad_norm_(model.Parameters.Select(p => p.Value), Clip);
        opt.step();
        return loss.item<float>();
    }

    /// <summary>Median of a full training step of <paramref name="preset"/> at <paramref name="batch"/>; prints "TPS preset libtorch tok/s".</summary>
    public static void Step(string preset, int batch, int steps, int warmup, AttentionKind attention)
    {
        var config = Preset(preset);
        using var model = SddTorchModel.Random(config, attention, 1337);
        using var opt = AdamW(model);
        var gen = new Generator(1337);
        var times = new List<double>();
        var loss = 0f;
        for (var i = 0; i < warmup + steps; i++)
        {
            using var scope = NewDisposeScope();
            var tokens = randint(0, Vocab, [batch, config.SeqLen], generator: gen);
            var targets = randint(0, Vocab, [batch, config.SeqLen], generator: gen);
            var t0 = Stopwatch.GetTimestamp();
            loss = TrainStep(model, opt, tokens, targets);
            if (i >= warmup)
                times.Add(Stopwatch.GetElapsedTime(t0).TotalSeconds);
        }
        var median = Median(times);
        var tps = batch * config.SeqLen / median;
        Console.WriteLine(($"libtorch {__version__} {preset} B={batch} T={config.SeqLen} threads={get_num_threads()} " +
            $"params={model.ParameterCount} attention={Name(attention)}: median {median * 1e3:F2} ms/step, {tps:F0} tokens/s " +
            $"(min {times.Min() * 1e3:F2} ms, {steps} steps after {warmup} warm-up, loss {loss:F3})"));
        Console.WriteLine(($"TPS {preset} libtorch {tps:F0}"));
    }

    /// <summary>
    /// Replays a <c>torch_cpu.py --export</c> file: same weights, same batch, the same number of training steps;
    /// compares parameter names, shapes, count and the losses (6 significant digits: |Δ| ≤ 1e-6·|loss|).
    /// Returns 0 when everything matches, 1 otherwise.
    /// </summary>
    public static int Verify(string path, AttentionKind attention)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"verify: '{path}' does not exist; write it with /usr/bin/python3 perf/cpu/torch_cpu.py REFERENCE PRESET BATCH --export FILE.");
        var file = Safetensors.Read(path);
        var preset = Meta(file, path, "preset");
        var batch = int.Parse(Meta(file, path, "batch"), CultureInfo.InvariantCulture);
        var expectedParams = long.Parse(Meta(file, path, "params"), CultureInfo.InvariantCulture);
        var expected = JsonSerializer.Deserialize<double[]>(Meta(file, path, "losses"))!;
        var hyper = JsonSerializer.Deserialize<Dictionary<string, double>>(Meta(file, path, "hyper"))!;
        double[] ours = [Lr, Beta1, Beta2, Eps, WeightDecay, Clip];
        string[] keys = ["lr", "beta1", "beta2", "eps", "weight_decay", "clip"];
        for (var i = 0; i < keys.Length; i++)
            if (!hyper.TryGetValue(keys[i], out var v) || v != ours[i])
                throw new InvalidDataException($"{path}: hyper-parameter {keys[i]} is {(hyper.TryGetValue(keys[i], out var w) ? w : double.NaN)}, this tool uses {ours[i]}; export it again with the current perf/cpu/torch_cpu.py.");
        var config = Preset(preset);
        var names = SddTorchModel.ParameterShapes(config).Select(p => "param." + p.Name).ToHashSet();
        var extra = file.Tensors.Keys.Where(k => k.StartsWith("param.", StringComparison.Ordinal) && !names.Contains(k)).ToList();
        if (extra.Count > 0)
            throw new InvalidDataException($"{path}: parameters the libtorch model does not have: {string.Join(", ", extra)}.");
        using var model = new SddTorchModel(config, attention, (name, shape) => FromFile(file, path, "param." + name, shape));
        using var opt = AdamW(model);
        using var tokens = FromFile(file, path, "input.tokens", [batch, config.SeqLen]).to(ScalarType.Int64);
        using var targets = FromFile(file, path, "input.targets", [batch, config.SeqLen]).to(ScalarType.Int64);
        var ok = model.ParameterCount == expectedParams;
        Console.WriteLine(($"libtorch {__version__} {preset} B={batch} attention={Name(attention)}: params {model.ParameterCount} (torch {expectedParams}) {(ok ? "same" : "DIFFERENT")}"));
        for (var i = 0; i < expected.Length; i++)
        {
            double loss = TrainStep(model, opt, tokens, targets);
            var same = Math.Abs(loss - expected[i]) <= 1e-6 * Math.Abs(expected[i]);
            ok &= same;
            Console.WriteLine(($"  step {i + 1}: loss libtorch {loss:F6} torch {expected[i]:F6} (relative difference {Math.Abs(loss - expected[i]) / Math.Abs(expected[i]):E1}) {(same ? "same to 6 digits" : "DIFFERENT")}"));
        }
        Console.WriteLine(ok ? "IDENTICAL" : "NOT IDENTICAL");
        return ok ? 0 : 1;
    }

    static string Meta(SafetensorsFile file, string path, string key) =>
        file.Metadata.TryGetValue(key, out var v) ? v
            : throw new InvalidDataException($"{path}: metadata '{key}' is missing; write the file with perf/cpu/torch_cpu.py --export.");

    static Tensor FromFile(SafetensorsFile file, string path, string name, long[] shape)
    {
        if (!file.Tensors.TryGetValue(name, out var t))
            throw new InvalidDataException($"{path}: tensor '{name}' is missing.");
        if (!t.Dims.SequenceEqual(shape))
            throw new InvalidDataException($"{path}: tensor '{name}' is {t.DimsText}; expected ({string.Join(", ", shape)}).");
        return tensor(t.Data, shape);
    }

    /// <summary>
    /// Median milliseconds of attention forward, and of forward + backward, on random (B, NH, T, HS) inputs
    /// (causal): libtorch's fused scaled_dot_product_attention and, for context, the composed softmax(q·kᵀ)·v.
    /// </summary>
    public static void Attention(int B, int T, int NH, int HS, int iters, int warmup)
    {
        var gen = new Generator(1);
        using var q = randn([B, NH, T, HS], generator: gen).requires_grad_();
        using var k = randn([B, NH, T, HS], generator: gen).requires_grad_();
        using var v = randn([B, NH, T, HS], generator: gen).requires_grad_();
        using var dOut = randn([B, NH, T, HS], generator: gen);
        using var mask = ones(T, T, dtype: ScalarType.Bool).triu(1);
        var scale = 1.0 / Math.Sqrt(HS);
        Func<Tensor>[] kinds =
        [
            () => nn.functional.scaled_dot_product_attention(q, k, v, is_casual: true),
            () => (q.matmul(k.transpose(-1, -2)) * scale).masked_fill(mask, float.NegativeInfinity).softmax(-1).matmul(v),
        ];
        string[] names = ["sdpa", "composed"];
        for (var i = 0; i < kinds.Length; i++)
        {
            var attention = kinds[i];
            var fwd = Samples(iters, warmup, () => { using var s = NewDisposeScope(); attention(); });
            var fwdBwd = Samples(iters, warmup, () =>
            {
                using var s = NewDisposeScope();
                autograd.grad([attention()], [q, k, v], [dOut]);
            });
            Console.WriteLine(($"ATTN {names[i]} B={B} T={T} NH={NH} HS={HS} causal: forward {Median(fwd) * 1e3:F3} ms, " +
                $"forward+backward {Median(fwdBwd) * 1e3:F3} ms (medians of {iters}, min {fwdBwd.Min() * 1e3:F3} ms)"));
        }
    }

    /// <summary>The weight-gradient shapes M×N×K of the presets' linear layers (dW = dYᵀ·X, K = B·T), the tied embedding's M = 65 included.</summary>
    public static IEnumerable<(int M, int N, int K)> ModelGemmShapes()
    {
        var seen = new HashSet<(int, int, int)>();
        foreach (var (preset, batch) in PresetBatches)
        {
            var c = Preset(preset);
            int C = c.DModel, F = c.FfnHidden, K = batch * c.SeqLen;
            foreach (var s in new[] { (C, C, K), (F, C, K), (C, F, K), (Vocab, C, K) })
                if (seen.Add(s))
                    yield return s;
        }
    }

    /// <summary>GFLOP/s of C (M, N) += Aᵀ·B with A (K, M) and B (K, N) row-major: torch addmm_ with a transposed view.</summary>
    public static void Gemm(IEnumerable<(int M, int N, int K)> shapes, int samples)
    {
        foreach (var (m, n, k) in shapes)
        {
            var gen = new Generator(1);
            using var a = rand([k, m], generator: gen).sub_(0.5);
            using var b = rand([k, n], generator: gen).sub_(0.5);
            using var c = zeros(m, n);
            using var at = a.t();
            var flops = 2.0 * m * n * k;
            var reps = Math.Max(1, (int)(0.02 * 100e9 / flops));   // ~20 ms a sample at 100 GFLOP/s
            var times = Samples(samples, 2, () =>
            {
                for (var r = 0; r < reps; r++)
                    c.addmm_(at, b);
            }).Select(t => t / reps).ToList();
            Console.WriteLine(($"GEMM {m}x{n}x{k} C+=At*B: median {flops / Median(times) / 1e9:F1} GFLOP/s, best {flops / times.Min() / 1e9:F1} ({samples} samples of {reps} calls)"));
        }
    }

    /// <summary>Seconds of <paramref name="count"/> runs after at least <paramref name="warmup"/> untimed ones and a settled JIT (as ours: BenchTiming.WarmUp).</summary>
    static List<double> Samples(int count, int warmup, Action body)
    {
        if (warmup > 0)
            BenchTiming.WarmUp(body, warmup);
        var times = new List<double>(count);
        for (var i = 0; i < count; i++)
        {
            var t0 = Stopwatch.GetTimestamp();
            body();
            times.Add(Stopwatch.GetElapsedTime(t0).TotalSeconds);
        }
        return times;
    }

    static double Median(List<double> xs)
    {
        var s = xs.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    public static string Name(AttentionKind kind) => kind == AttentionKind.Sdpa ? "sdpa" : "composed";
}
