// Where a training step's time goes: every op interface of an OpSet wrapped in a DispatchProxy that times
// each call (the managed ops run synchronously on the caller's thread, so wall time per call is exact up to
// the proxy's own ~1 µs). Sums per "Family.Method" over the timed steps.
using System.Diagnostics;
using System.Reflection;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Managed;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Perf;

/// <summary>Totals of seconds and calls per op method.</summary>
internal sealed class OpTimes
{
    readonly Dictionary<string, (double Seconds, long Calls, double JoinWait)> totals = [];
    readonly Dictionary<string, (double Seconds, long Calls, double Flop)> gemms = [];

    public bool Enabled { get; set; }

    /// <param name="joinWait">Seconds of the call the calling thread spent waiting for workers at joins.</param>
    public void Add(string name, double seconds, double joinWait)
    {
        if (!Enabled)
            return;
        var (s, c, w) = totals.GetValueOrDefault(name);
        totals[name] = (s + seconds, c + 1, w + joinWait);
    }

    /// <summary>One GEMM call, keyed by its shape (M×N×K, transposes, β, batch count).</summary>
    public void AddGemm(in GemmSpec g, double seconds, string group = "")
    {
        if (!Enabled)
            return;
        var key = $"{g.M}x{g.N}x{g.K} {(g.TransA ? 'T' : 'N')}{(g.TransB ? 'T' : 'N')} b{g.Beta:0.#} x{g.BatchCount}{group}";
        var (s, c, f) = gemms.GetValueOrDefault(key);
        gemms[key] = (s + seconds, c + 1, f + 2.0 * g.M * g.N * g.K * g.BatchCount);
    }

    double attentionFlop;

    /// <summary>
    /// The causal attention products a call needs: <paramref name="products"/> matrix products (forward: q·kᵀ and
    /// P·v; backward: dV, dP, dQ, dK, not counting the recomputed q·kᵀ) over the T(T+1)/2 (query, key) pairs.
    /// </summary>
    public void AddAttention(in AttentionShape a, int products)
    {
        if (Enabled)
            attentionFlop += products * 2.0 * a.B * a.NH * (a.T * (a.T + 1.0) / 2) * a.HS;
    }

    public void Print(int steps, double stepSeconds)
    {
        var all = totals.Values.Sum(v => v.Seconds);
        Console.WriteLine($"{"op",-34} {"ms/step",9} {"calls/step",10} {"share",6} {"join wait ms",12}");
        foreach (var (name, (s, c, w)) in totals.OrderByDescending(kv => kv.Value.Seconds))
            Console.WriteLine($"{name,-34} {s / steps * 1e3,9:F3} {(double)c / steps,10:F1} {100 * s / all,5:F1}% {w / steps * 1e3,12:F3}");
        Console.WriteLine($"{"sum of ops",-34} {all / steps * 1e3,9:F3}   (whole step {stepSeconds * 1e3:F3} ms; join waits " +
                          $"{totals.Values.Sum(v => v.JoinWait) / steps * 1e3:F2} ms: the calling thread idle while a worker finished)");
        Console.WriteLine();
        Console.WriteLine($"{"GEMM shape (M x N x K, op, beta, batch)",-40} {"ms/step",9} {"calls/step",10} {"GFLOP/s",8}");
        foreach (var (name, (s, c, f)) in gemms.OrderByDescending(kv => kv.Value.Seconds))
            Console.WriteLine($"{name,-40} {s / steps * 1e3,9:F3} {(double)c / steps,10:F1} {f / s / 1e9,8:F1}");
        double gs = gemms.Values.Sum(v => v.Seconds), gf = gemms.Values.Sum(v => v.Flop);
        Console.WriteLine($"{"all GEMMs",-40} {gs / steps * 1e3,9:F3} {(double)gemms.Values.Sum(v => v.Calls) / steps,10:F1} {gf / gs / 1e9,8:F1}   ({gf / steps / 1e9:F2} GFLOP/step)");
        Console.WriteLine($"attention products (causal, no recompute): {attentionFlop / steps / 1e9:F2} GFLOP/step; GEMMs + attention: {(gf + attentionFlop) / steps / 1e9:F2} GFLOP/step, {(gf + attentionFlop) / steps / stepSeconds / 1e9:F1} GFLOP/s over the whole step");
    }
}

/// <summary>Times every call of interface T on its target.</summary>
public class TimingProxy<T> : DispatchProxy
{
    T target = default!;
    OpTimes times = null!;
    string family = "";

    internal static T Wrap(T target, OpTimes times, string family)
    {
        var proxy = Create<T, TimingProxy<T>>();
        var p = (TimingProxy<T>)(object)proxy!;
        p.target = target;
        p.times = times;
        p.family = family;
        return proxy;
    }

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        var t0 = Stopwatch.GetTimestamp();
        var w0 = WorkerPool.JoinWaitTicks;
        try
        {
            return targetMethod!.Invoke(target, args);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            throw e.InnerException;
        }
        finally
        {
            var seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            times.Add($"{family}.{targetMethod!.Name}", seconds, (double)(WorkerPool.JoinWaitTicks - w0) / Stopwatch.Frequency);
            if (args is [GemmSpec grouped, IReadOnlyList<GemmMember> members, ..])
                times.AddGemm(grouped with { M = members.Sum(m => m.M) }, seconds, $" ({string.Join('+', members.Select(m => m.M))})");
            else if (args is [GemmSpec spec, ..])
                times.AddGemm(spec, seconds);
            else if (args is [Tensor x, PackedWeight w, ..] && targetMethod.Name == "Forward") // x·Wᵀ from packed copies
                times.AddGemm(new GemmSpec((int)(x.Length / w.In), w.Out, w.In, TransB: true), seconds);
            else if (args is [_, _, PackedWeight pw, Tensor dX, bool accumulate]) // dY·W from packed copies
                times.AddGemm(new GemmSpec((int)(dX.Length / pw.In), pw.In, pw.Out, Beta: accumulate ? 1f : 0f), seconds);
            else if (args is [AttentionShape shape, ..] && targetMethod.Name is "Forward" or "Backward")
                times.AddAttention(shape, targetMethod.Name == "Forward" ? 2 : 4);
        }
    }
}

internal static class OpProfiler
{
    public static OpSet Wrap(OpSet o, OpTimes t) => new()
    {
        Gemm = TimingProxy<IGemmOps>.Wrap(o.Gemm, t, "Gemm"),
        Norm = TimingProxy<INormOps>.Wrap(o.Norm, t, "Norm"),
        Rope = TimingProxy<IRopeOps>.Wrap(o.Rope, t, "Rope"),
        Attention = TimingProxy<IAttentionOps>.Wrap(o.Attention, t, "Attention"),
        Activation = TimingProxy<IActivationOps>.Wrap(o.Activation, t, "Activation"),
        Embedding = TimingProxy<IEmbeddingOps>.Wrap(o.Embedding, t, "Embedding"),
        Loss = TimingProxy<ILossOps>.Wrap(o.Loss, t, "Loss"),
        Elementwise = TimingProxy<IElementwiseOps>.Wrap(o.Elementwise, t, "Elementwise"),
        Reduction = TimingProxy<IReductionOps>.Wrap(o.Reduction, t, "Reduction"),
        Optimizer = TimingProxy<IOptimizerOps>.Wrap(o.Optimizer, t, "Optimizer"),
        Random = TimingProxy<IRandomOps>.Wrap(o.Random, t, "Random"),
        FusedFfn = o.FusedFfn is null ? null : TimingProxy<IFusedFfnOps>.Wrap(o.FusedFfn, t, "FusedFfn"),
        WeightPacking = o.WeightPacking is null ? null : TimingProxy<IWeightPackingOps>.Wrap(o.WeightPacking, t, "WeightPacking"),
    };

    /// <summary>Per-op breakdown of <paramref name="steps"/> training steps of a preset on <c>cpu</c>.</summary>
    public static void Run(string preset, int batch, int steps)
    {
        using var device = Device.Open("cpu");
        var times = new OpTimes();
        var ops = Wrap(device.Ops, times);
        // The first Step call warms up untimed; enable timing for the measured ones through a warm-up hook.
        long jobs = 0;
        var stepSeconds = CpuBench.StepWithHook(preset, device, batch, 5, steps, ops, () =>
        {
            times.Enabled = true;
            jobs = WorkerPool.Jobs;
        });
        times.Print(steps, stepSeconds);
        Console.WriteLine($"worker pool: {(double)(WorkerPool.Jobs - jobs) / steps:F0} parallel jobs/step");
    }
}
