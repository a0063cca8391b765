// Plain timing loops for the CPU figures of docs/perf.md (issue 6): the FP32 peak (independent FMA chains),
// the managed GEMM at the model's shapes, and a full training step (forward, loss, backward, AdamW) in
// tokens/s. Medians after warm-up; GFLOP/s = 2·M·N·K / time per call.
using System.Diagnostics;
using System.Runtime.Intrinsics;
using SddIlgpu.Layers;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;
using SddIlgpu.Training;
using SddIlgpu.Training.Bench;

namespace SddIlgpu.Perf;

internal static class CpuBench
{
    /// <summary>FP32 peak: 12 independent FMA chains per thread on one core, then one thread per core; best of 7.</summary>
    public static double Peak()
    {
        const long iterations = 20_000_000;
        var lanes = Vector512.IsHardwareAccelerated ? 16 : 8;
        double Run(int threads)
        {
            var best = double.MaxValue;
            for (var rep = 0; rep < 7; rep++)
            {
                var sw = Stopwatch.StartNew();
                var ts = Enumerable.Range(0, threads).Select(_ => new Thread(() => ManagedPeakFmaBenchmarks.Chains(iterations))).ToArray();
                foreach (var t in ts) t.Start();
                foreach (var t in ts) t.Join();
                best = Math.Min(best, sw.Elapsed.TotalSeconds);
            }
            return iterations * 12.0 * lanes * 2 * threads / best / 1e9;
        }
        var one = Run(1);
        var all = Run(Environment.ProcessorCount);
        Console.WriteLine($"peak FMA: 1 thread {one:F1} GFLOP/s, {Environment.ProcessorCount} threads {all:F1} GFLOP/s (best of 7, {lanes}-lane FMA)");
        return all;
    }

    public static readonly string[] ModelShapes =
    [
        "xWt 768x344x128", "xWt 768x128x128", "xWt 768x65x128", "xWt 512x64x64", "xWt 512x176x64", "xWt 512x65x64",
        "dYW 768x128x344", "dYW 768x128x128", "dYW 768x128x65",
        "dYtX 344x128x768", "dYtX 128x128x768", "dYtX 65x128x768", "sq 256", "sq 512",
    ];

    /// <summary>
    /// Every weight-gradient product dW (Out, In) += dYᵀ (Out, n)·X (n, In) of a training step, as Linear.Backward
    /// and Model.Backward call it (TransA, β = 1), with n = B·T of the perf presets (tiny B = 8, T = 64;
    /// shakespeare-cpu B = 12, T = 64; baby-gpt B = 4, T = 256) and dY's real row stride: "dYtX MxNxK lda=L" is
    /// M = Out, N = In, K = n, lda = L. Up and gate read dY from the fused (n, 2F) buffer (lda = 2F); the tied LM
    /// head has M = vocabulary 65.
    /// </summary>
    public static readonly string[] WeightGradShapes =
    [
        // tiny: C = 64, F = 176, n = 512
        "dYtX 64x64x512 lda=64", "dYtX 176x64x512 lda=352", "dYtX 64x176x512 lda=64", "dYtX 65x64x512 lda=65",
        // shakespeare-cpu: C = 128, F = 344, n = 768
        "dYtX 128x128x768 lda=128", "dYtX 344x128x768 lda=688", "dYtX 128x344x768 lda=128", "dYtX 65x128x768 lda=65",
        // baby-gpt: C = 384, F = 1024, n = 1024
        "dYtX 384x384x1024 lda=384", "dYtX 1024x384x1024 lda=2048", "dYtX 384x1024x1024 lda=384", "dYtX 65x384x1024 lda=65",
    ];

    /// <summary>
    /// Median and best GFLOP/s of each GEMM form: 15 samples of enough calls to last ~20 ms each, then the best
    /// single call (robust to a loaded machine, where most samples are preempted). A shape is
    /// "FORM MxNxK [lda=L]" with FORM xWt (C = A·Bᵀ), dYW (C = A·B) or dYtX (C += Aᵀ·B); lda defaults to the dense stride.
    /// With <paramref name="cold"/>, also 41 single calls each after the device fills 64 MB elsewhere, so A, B and C come
    /// from memory as in a training step where other ops ran in between: their median and best.
    /// </summary>
    public static void Gemm(IEnumerable<string> shapes, double peak, bool cold = false)
    {
        using var device = Device.Open("cpu");
        foreach (var shape in shapes)
        {
            var (spec, la, lb, lc, aLength) = ParseShape(shape);
            int m = spec.M, n = spec.N, k = spec.K;
            // At least 4 MiB, as the model's arenas are: host arenas that big get transparent huge pages (Arena).
            using var arena = device.Allocate(Math.Max(1L << 20, (long)aLength + (long)k * n + (long)m * n), "gemm");
            var (a, b, c) = Operands(arena, spec, aLength);
            var flops = 2.0 * m * n * k;
            var calls = Math.Max(1, (int)(20e-3 * 100e9 / flops));
            var times = Samples(15, 3, () =>
            {
                for (var i = 0; i < calls; i++)
                    device.Ops.Gemm.Gemm(spec, a, la, b, lb, c, lc);
            }).Select(t => t / calls).Order().ToArray();
            double med = times[times.Length / 2], best = times[0];
            if (cold) // after the warm samples, so tiered JIT has reached its optimised code
            {
                using var flushArena = device.Allocate(16 << 20, "gemm.flush");
                var flush = flushArena.Take(new Shape(16 << 20));
                var coldTimes = Enumerable.Range(0, 41).Select(i =>
                {
                    device.Ops.Elementwise.Fill(flush, i); // 64 MB, twice the L3: evicts A, B and C (a parallel op, as in a step)
                    var t0 = Stopwatch.GetTimestamp();
                    device.Ops.Gemm.Gemm(spec, a, la, b, lb, c, lc);
                    return Stopwatch.GetElapsedTime(t0).TotalSeconds;
                }).Order().ToArray();
                Console.Write($"[cold: median {flops / coldTimes[20] / 1e9:F1} best {flops / coldTimes[0] / 1e9:F1} GFLOP/s] ");
            }
            // The fastest single call of ~100 ms of them: on a loaded machine the calls that ran unpreempted.
            var single = Samples(Math.Clamp((int)(0.1 * 100e9 / flops), 20, 2000), 0, () => device.Ops.Gemm.Gemm(spec, a, la, b, lb, c, lc)).Min();
            Console.WriteLine($"{shape,-28} median {med * 1e6,9:F1} us {flops / med / 1e9,6:F1} GFLOP/s ({100 * flops / med / 1e9 / peak,3:F0} % of peak)  " +
                $"best {flops / best / 1e9,6:F1}  best single call {flops / single / 1e9,6:F1} ({100 * flops / single / 1e9 / peak,3:F0} %)");
        }
    }

    /// <summary>
    /// A shape "FORM MxNxK [lda=L]": FORM xWt (C = A·Bᵀ), dYW (C = A·B) or dYtX (C += Aᵀ·B, β = 1); N and K default to M,
    /// lda to the dense stride. Returns the spec, the three layouts and A's length in floats.
    /// </summary>
    public static (GemmSpec Spec, MatrixLayout La, MatrixLayout Lb, MatrixLayout Lc, int ALength) ParseShape(string shape)
    {
        var parts = shape.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var dims = parts[1].Split('x').Select(int.Parse).ToArray();
        int m = dims[0], n = dims.Length > 1 ? dims[1] : m, k = dims.Length > 2 ? dims[2] : m;
        var (ta, tb, beta) = parts[0] switch { "xWt" => (false, true, 0f), "dYtX" => (true, false, 1f), _ => (false, false, 0f) };
        var lda = parts.Length > 2 && parts[2].StartsWith("lda=", StringComparison.Ordinal) ? int.Parse(parts[2][4..]) : ta ? m : k;
        return (new GemmSpec(m, n, k, ta, tb, 1f, beta), new(lda), new(tb ? k : n), new(n), (ta ? k : m) * lda);
    }

    /// <summary>A and B uniform in [−0.5, 0.5) (seed 1), C zero, taken from <paramref name="arena"/>.</summary>
    public static (Tensor A, Tensor B, Tensor C) Operands(Arena arena, GemmSpec spec, int aLength)
    {
        int n = spec.N, k = spec.K;
        Tensor a = arena.Take(aLength), b = arena.Take(k * n), c = arena.Take(spec.M * n);
        var r = new Random(1);
        a.Upload([.. Enumerable.Range(0, aLength).Select(_ => (float)r.NextDouble() - 0.5f)]);
        b.Upload([.. Enumerable.Range(0, k * n).Select(_ => (float)r.NextDouble() - 0.5f)]);
        c.Upload(new float[spec.M * n]);
        return (a, b, c);
    }

    /// <summary>Median tokens/s of full training steps of a preset (char vocabulary 65, post-norm, sdd-code: the CLI defaults).</summary>
    public static double Step(string preset, string deviceName, int batch, int warmup, int steps)
    {
        using var device = Device.Open(deviceName);
        var median = StepWithHook(preset, device, batch, warmup, steps, null, null);
        var tps = batch * ModelConfig.Preset(preset, 65, Residual.Post, LinearKind.SddCode).SeqLen / median;
        Console.WriteLine($"TPS {preset} {deviceName} {tps:F0}");
        return tps;
    }

    /// <summary>Runs the steps (with <paramref name="ops"/> in place of the device's if given), prints and returns the median seconds per step.</summary>
    public static double StepWithHook(string preset, Device device, int batch, int warmup, int steps, OpSet? ops, Action? afterWarmup)
    {
        using var run = new StepRunner(device, preset, batch, ops);
        var config = run.Config;
        var stepsRun = 0;
        var times = Samples(steps, warmup, () =>
        {
            run.Step();
            stepsRun++;
        }, afterWarmup).Order().ToArray();
        var median = times[times.Length / 2];
        // The warm-up runs until the JIT settles, so its count (and the loss after all steps) varies between processes.
        Console.WriteLine($"step {preset} B={batch} T={config.SeqLen} on {device.Name}: median {median * 1e3:F2} ms/step, {run.Tokens / median:F0} tokens/s " +
            $"(min {times[0] * 1e3:F2} ms, max {times[^1] * 1e3:F2} ms, {steps} steps after {stepsRun - steps} warm-up, loss {run.Loss:F3} after step {stepsRun})");
        return median;
    }

    /// <summary>
    /// Seconds of each of <paramref name="count"/> runs of <paramref name="body"/> after at least <paramref name="warmup"/>
    /// untimed ones, more until the JIT has settled (<see cref="BenchTiming.WarmUp"/>); none with warmup 0.
    /// </summary>
    public static List<double> Samples(int count, int warmup, Action body, Action? afterWarmup = null)
    {
        if (warmup > 0)
            BenchTiming.WarmUp(body, warmup);
        afterWarmup?.Invoke();
        var times = new List<double>(count);
        for (var i = 0; i < count; i++)
        {
            var t0 = Stopwatch.GetTimestamp();
            body();
            times.Add(Stopwatch.GetElapsedTime(t0).TotalSeconds);
        }
        return times;
    }
}
