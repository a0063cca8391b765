// Kernel benchmarks: GEMM GFLOP/s (2·M·N·K per call) at square sizes and the model's shapes, each result
// validated against float64 dot products at sampled entries before it is timed; attention forward+backward
// time; RMS norm GB/s (bytes that must move: read x, gain, write y and rstd; backward reads dY, x, gain, rstd).
using SddIlgpu.Layers;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Training.Bench;

/// <summary>One GEMM to time; its record name is <c>gemm/LABEL LAYOUT MxNxK</c> (torch_bench.py parses the last two words).</summary>
public sealed record GemmCase(string Label, GemmSpec Spec)
{
    public string Layout => (Spec.TransA ? "T" : "N") + (Spec.TransB ? "T" : "N");
    public string Name => $"gemm/{Label} {Layout} {Spec.M}x{Spec.N}x{Spec.K}";
    public double Flops => 2.0 * Spec.M * Spec.N * Spec.K;
}

public static class KernelBench
{
    /// <summary>The GEMMs of one training step of a preset, B·T rows (forward x·Wᵀ, input and weight gradients).</summary>
    public static IEnumerable<GemmCase> ModelGemms(string preset, ModelConfig c, int batch)
    {
        int n = batch * c.SeqLen, C = c.DModel, F = c.FfnHidden;
        yield return new($"{preset} attn-proj fwd", new GemmSpec(n, C, C, TransB: true));
        yield return new($"{preset} up/gate fwd", new GemmSpec(n, F, C, TransB: true));
        yield return new($"{preset} down fwd", new GemmSpec(n, C, F, TransB: true));
        yield return new($"{preset} down dX", new GemmSpec(n, F, C));
        yield return new($"{preset} up dW", new GemmSpec(F, C, n, TransA: true, Beta: 1f));
        yield return new($"{preset} lm-head fwd", new GemmSpec(n, c.Vocab, C, TransB: true));
    }

    /// <summary>GFLOP/s of one GEMM, or the validation failure (then it is not timed).</summary>
    public static (double? Gflops, string? Problem) Gemm(Device device, GemmCase g, BenchPlan plan)
    {
        var s = g.Spec;
        var (ar, ac) = s.TransA ? (s.K, s.M) : (s.M, s.K);
        var (br, bc) = s.TransB ? (s.N, s.K) : (s.K, s.N);
        var a = Random(ar * ac, 1);
        var b = Random(br * bc, 2);
        using var arena = device.Allocate((long)ar * ac + (long)br * bc + (long)s.M * s.N, "bench.gemm");
        Tensor ta = arena.Take((ar, ac), "a"), tb = arena.Take((br, bc), "b"), tc = arena.Take((s.M, s.N), "c");
        ta.Upload(a);
        tb.Upload(b);
        MatrixLayout la = new(ac), lb = new(bc), lc = new(s.N);
        var gemm = device.Ops.Gemm;
        gemm.Gemm(s, ta, la, tb, lb, tc, lc);
        var problem = Validate(s, a, b, tc.ToArray());
        if (problem is not null)
            return (null, problem);
        var (median, _) = BenchTiming.Median(device, () => gemm.Gemm(s, ta, la, tb, lb, tc, lc), plan.Warmup, plan.Reps, plan.BudgetSeconds);
        return (g.Flops / median / 1e9, null);
    }

    /// <summary>Compares 64 sampled entries of C = α·op(A)·op(B) (C started at zero) with float64 dot products.</summary>
    static string? Validate(GemmSpec s, float[] a, float[] b, float[] c)
    {
        var rng = new System.Random(7);
        var got = new float[64];
        var want = new double[64];
        for (var t = 0; t < 64; t++)
        {
            int i = rng.Next(s.M), j = rng.Next(s.N);
            double sum = 0;
            for (var k = 0; k < s.K; k++)
                sum += (double)(s.TransA ? a[(long)k * s.M + i] : a[(long)i * s.K + k]) * (s.TransB ? b[(long)j * s.K + k] : b[(long)k * s.N + j]);
            want[t] = s.Alpha * sum;
            got[t] = c[(long)i * s.N + j];
        }
        var err = Conformance.ErrorMeasure.MaxRelative(got, want);
        return err <= 1e-3 ? null : $"wrong result: max relative error {err:G3} at sampled entries (> 1e-3); not timed";
    }

    /// <summary>Milliseconds of one causal attention forward plus backward at a preset's (B, T, NH, KVH, HS).</summary>
    public static double Attention(Device device, AttentionShape s, BenchPlan plan)
    {
        var att = device.Ops.Attention;
        long qLen = (long)s.B * s.T * s.NH * s.HS, kLen = (long)s.B * s.T * s.KVH * s.HS;
        using var arena = device.Allocate(4 * qLen + 4 * kLen + att.SavedLength(s) + att.ScratchLength(s), "bench.attention");
        Tensor q = Up(arena, (s.B, s.T, s.NH * s.HS), 3), k = Up(arena, (s.B, s.T, s.KVH * s.HS), 4), v = Up(arena, (s.B, s.T, s.KVH * s.HS), 5);
        Tensor ctx = arena.Take(q.Shape, "ctx"), dCtx = Up(arena, q.Shape, 6), dQ = arena.Take(q.Shape, "dQ"), dK = arena.Take(k.Shape, "dK"), dV = arena.Take(v.Shape, "dV");
        Tensor saved = arena.Take(checked((int)att.SavedLength(s)), "saved"), scratch = arena.Take(checked((int)att.ScratchLength(s)), "scratch");
        var (median, _) = BenchTiming.Median(device, () =>
        {
            att.Forward(s, q, k, v, saved, ctx);
            att.Backward(s, dCtx, q, k, v, ctx, saved, scratch, dQ, dK, dV);
        }, plan.Warmup, plan.Reps, plan.BudgetSeconds);
        return median * 1e3;
    }

    /// <summary>GB/s of RMS norm forward and backward over (rows, width) with a gain.</summary>
    public static (double Forward, double Backward) RmsNorm(Device device, int rows, int width, BenchPlan plan)
    {
        long n = (long)rows * width;
        using var arena = device.Allocate(4 * n + 2 * width + rows, "bench.rmsnorm");
        Tensor x = Up(arena, (rows, width), 8), y = arena.Take((rows, width), "y"), dY = Up(arena, (rows, width), 9), dX = arena.Take((rows, width), "dX");
        Tensor gain = Up(arena, width, 10), dGain = arena.Take(width, "dGain"), rstd = arena.Take(rows, "rstd");
        var norm = device.Ops.Norm;
        var (fwd, _) = BenchTiming.Median(device, () => norm.Forward(x, gain, y, rstd, width, 1e-5f), plan.Warmup, plan.Reps, plan.BudgetSeconds);
        var (bwd, _) = BenchTiming.Median(device, () => norm.Backward(dY, x, gain, rstd, dX, dGain, width), plan.Warmup, plan.Reps, plan.BudgetSeconds);
        return (4.0 * (2 * n + width + rows) / fwd / 1e9, 4.0 * (3 * n + 2 * width + rows) / bwd / 1e9);
    }

    static Tensor Up(Arena arena, Shape shape, int seed)
    {
        var t = arena.Take(shape, $"input{seed}");
        t.Upload(Random(checked((int)shape.Length), seed));
        return t;
    }

    internal static float[] Random(int n, int seed)
    {
        var r = new System.Random(seed);
        var a = new float[n];
        for (var i = 0; i < n; i++)
            a[i] = (float)(r.NextDouble() * 2 - 1);
        return a;
    }
}

/// <summary>How hard to time: untimed warm-up runs, timed runs, and a time budget after which no run is added.</summary>
public sealed record BenchPlan(int Warmup, int Reps, double BudgetSeconds);
