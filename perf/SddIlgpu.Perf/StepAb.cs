// Issue 14 item 4: what a step-level fusion buys, measured as a paired comparison. Two models of the same preset on
// one `cpu` device, one with the device's fused ops and one with the separate ops only, take turns step by step
// (the order swapping every pair), so the machine's drifting load hits both alike; prints the medians, the median
// of the per-pair ratios, how often the fused step was faster, and both losses (equal when the fusion is exact).
// `step-ab PRESET BATCH PAIRS`.
using System.Diagnostics;
using SddIlgpu.Layers;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;
using SddIlgpu.Training;

namespace SddIlgpu.Perf;

internal static class StepAb
{
    /// <summary>Paired steps of the preset with and without <see cref="OpSet.FusedFfn"/>.</summary>
    public static void Run(string preset, int batch, int pairs)
    {
        using var device = Device.Open("cpu");
        var o = device.Ops;
        var without = new OpSet
        {
            Gemm = o.Gemm, Norm = o.Norm, Rope = o.Rope, Attention = o.Attention, Activation = o.Activation, Embedding = o.Embedding,
            Loss = o.Loss, Elementwise = o.Elementwise, Reduction = o.Reduction, Optimizer = o.Optimizer, Random = o.Random,
        };
        var a = new Runner(device, preset, batch, without);
        var b = new Runner(device, preset, batch, o);
        for (var i = 0; i < 3; i++) { a.Step(); b.Step(); }
        var ta = new List<double>(); var tb = new List<double>(); var ratio = new List<double>();
        for (var p = 0; p < pairs; p++)
        {
            double x, y;
            if (p % 2 == 0) { x = a.Step(); y = b.Step(); } else { y = b.Step(); x = a.Step(); }
            ta.Add(x); tb.Add(y); ratio.Add(y / x);
        }
        static double Med(List<double> v) { var s = v.Order().ToArray(); return s[s.Length / 2]; }
        Console.WriteLine($"A (separate) median {Med(ta):F1} ms min {ta.Min():F1}; B (fused) median {Med(tb):F1} ms min {tb.Min():F1}; median B/A {Med(ratio):F4}; B faster in {ratio.Count(r => r < 1)}/{pairs}; losses {a.Loss:F6} {b.Loss:F6}");
    }

    sealed class Runner
    {
        readonly ModelWeights weights;
        readonly Model model;
        readonly AdamW optimizer;
        readonly ModelConfig config;
        readonly Random r = new(7);
        readonly float[] tokens, targets, loss = new float[1];

        public Runner(Device device, string preset, int batch, OpSet ops)
        {
            config = ModelConfig.Preset(preset, 65, Residual.Post, LinearKind.SddCode);
            weights = new ModelWeights(device, config, ops);
            weights.Initialize(1337);
            model = new Model(weights, batch);
            optimizer = new AdamW(weights, new AdamWConfig());
            tokens = new float[batch * config.SeqLen];
            targets = new float[tokens.Length];
        }

        public float Loss => loss[0];

        public double Step()
        {
            for (var i = 0; i < tokens.Length; i++) { tokens[i] = r.Next(config.Vocab); targets[i] = r.Next(config.Vocab); }
            var t0 = Stopwatch.GetTimestamp();
            weights.ZeroGrad();
            model.Tokens.Upload(tokens);
            model.Targets.Upload(targets);
            model.ForwardLoss(1f / tokens.Length);
            model.Backward();
            optimizer.Step(1e-4f);
            model.Loss.Download(loss);
            return Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        }
    }
}
