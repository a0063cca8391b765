// Issue 14 item 2: the managed `cpu` device's fused FlashAttention-2 attention against the materialised managed
// attention it replaced, forward + backward at a preset's shape, in alternating rounds on one device, with the
// attention activation memory each allocates per layer. `attention PRESET BATCH [ROUNDS]`.
using System.Diagnostics;
using SddIlgpu.Layers;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Managed;
using SddIlgpu.Tensors.Ops;
using SddIlgpu.Training.Bench;

namespace SddIlgpu.Perf;

internal static class AttentionBench
{
    /// <summary>Calls per timed round (their mean is the round's figure).</summary>
    const int CallsPerRound = 10;

    public static void Run(string preset, int batch, int rounds)
    {
        var c = ModelConfig.Preset(preset, 65, Residual.Post, LinearKind.SddCode);
        var s = CausalSelfAttention.Shape(c, batch);
        using var device = Device.Open("cpu");
        var variants = new (string Name, IAttentionOps Op)[] { ("materialised", new MaterializedAttention(device)), ("fused", device.Ops.Attention) };
        Console.WriteLine($"attention {preset}: B={s.B} T={s.T} NH={s.NH} KVH={s.KVH} HS={s.HS}, {ManagedSimd.Workers} worker(s), {rounds} alternating rounds of {CallsPerRound} forward+backward calls");
        var runs = variants.Select(v => new Case(device, s, v.Op)).ToArray();
        try
        {
            foreach (var r in runs)
                BenchTiming.WarmUp(() => r.Time(1, record: false), 40); // tiered JIT to its optimised code, scratch growth, page faults
            var times = variants.Select(_ => new List<double>()).ToArray();
            for (var round = 0; round < rounds; round++)
                foreach (var i in round % 2 == 0 ? new[] { 0, 1 } : new[] { 1, 0 }) // alternate which goes first
                {
                    var (fwd, bwd) = runs[i].Time(CallsPerRound);
                    times[i].Add(fwd + bwd);
                }
            for (var i = 0; i < runs.Length; i++)
            {
                var op = variants[i].Op;
                long saved = 4 * op.SavedLength(s), scratch = 4 * op.ScratchLength(s);
                Console.WriteLine($"{variants[i].Name,-13} fwd+bwd median {Median(times[i]):F3} ms  (fwd {Median(runs[i].Forward):F3}, bwd {Median(runs[i].Backward):F3})  " +
                    $"saved per layer {saved:N0} B, shared scratch {scratch:N0} B");
            }
            long oldBytes = 4 * variants[0].Op.SavedLength(s), newBytes = 4 * variants[1].Op.SavedLength(s);
            Console.WriteLine($"speed-up {Median(times[0]) / Median(times[1]):F2}x; attention activation bytes saved per layer {oldBytes - newBytes:N0} " +
                $"({(oldBytes - newBytes) / 1048576.0:F2} MiB), and {4 * (variants[0].Op.ScratchLength(s) - variants[1].Op.ScratchLength(s)):N0} B of shared scratch per model");
        }
        finally
        {
            foreach (var r in runs)
                r.Dispose();
        }
    }

    static double Median(List<double> xs)
    {
        var a = xs.Order().ToArray();
        return a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2;
    }

    /// <summary>One attention's tensors (random q, k, v, dCtx) and its per-round forward and backward times in ms.</summary>
    sealed class Case : IDisposable
    {
        readonly Arena arena;
        readonly AttentionShape s;
        readonly IAttentionOps op;
        readonly Tensor q, k, v, ctx, dCtx, saved, scratch, dQ, dK, dV;

        public Case(Device device, AttentionShape s, IAttentionOps op)
        {
            this.s = s;
            this.op = op;
            long nq = (long)s.B * s.T * s.NH * s.HS, nkv = (long)s.B * s.T * s.KVH * s.HS;
            arena = device.Allocate(4 * nq + 4 * nkv + op.SavedLength(s) + op.ScratchLength(s), "bench.attention");
            Tensor Take(long n) => arena.Take(checked((int)n));
            (q, k, v, ctx, dCtx) = (Take(nq), Take(nkv), Take(nkv), Take(nq), Take(nq));
            (saved, scratch, dQ, dK, dV) = (Take(op.SavedLength(s)), Take(op.ScratchLength(s)), Take(nq), Take(nkv), Take(nkv));
            foreach (var (t, stream) in new[] { (q, 1ul), (k, 2ul), (v, 3ul), (dCtx, 4ul) })
                device.Ops.Random.FillUniform(t, 7, stream);
        }

        public List<double> Forward { get; } = [];
        public List<double> Backward { get; } = [];

        /// <summary>Mean ms of forward and of backward over <paramref name="calls"/> calls, recorded.</summary>
        public (double Forward, double Backward) Time(int calls, bool record = true)
        {
            double fwd = 0, bwd = 0;
            for (var i = 0; i < calls; i++)
            {
                var t0 = Stopwatch.GetTimestamp();
                op.Forward(s, q, k, v, saved, ctx);
                var t1 = Stopwatch.GetTimestamp();
                op.Backward(s, dCtx, q, k, v, ctx, saved, scratch, dQ, dK, dV);
                var t2 = Stopwatch.GetTimestamp();
                fwd += Stopwatch.GetElapsedTime(t0, t1).TotalMilliseconds;
                bwd += Stopwatch.GetElapsedTime(t1, t2).TotalMilliseconds;
            }
            if (record)
            {
                Forward.Add(fwd / calls);
                Backward.Add(bwd / calls);
            }
            return (fwd / calls, bwd / calls);
        }

        public void Dispose() => arena.Dispose();
    }
}
