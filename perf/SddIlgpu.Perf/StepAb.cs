// Issue 14 item 4: what a step-level fusion buys, measured as a paired comparison. Two models of the same preset on
// one `cpu` device, one with the device's fused ops and one with the separate ops only, take turns step by step
// (the order swapping every pair), so the machine's drifting load hits both alike; prints the medians, the median
// of the per-pair ratios, how often the fused step was faster, and both losses (equal when the fusion is exact).
// `step-ab PRESET BATCH PAIRS`.
using System.Diagnostics;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;

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
            WeightPacking = o.WeightPacking, // only the fused FFN differs
        };
        using var a = new StepRunner(device, preset, batch, without);
        using var b = new StepRunner(device, preset, batch, o);
        for (var i = 0; i < 3; i++)
        {
            a.Step();
            b.Step();
        }
        var ta = new List<double>();
        var tb = new List<double>();
        var ratio = new List<double>();
        for (var p = 0; p < pairs; p++)
        {
            double x, y;
            if (p % 2 == 0)
                (x, y) = (Time(a), Time(b));
            else
                (y, x) = (Time(b), Time(a));
            ta.Add(x);
            tb.Add(y);
            ratio.Add(y / x);
        }
        Console.WriteLine($"A (separate) median {Median(ta):F1} ms min {ta.Min():F1}; B (fused) median {Median(tb):F1} ms min {tb.Min():F1}; " +
            $"median B/A {Median(ratio):F4}; B faster in {ratio.Count(r => r < 1)}/{pairs}; losses {a.Loss:F6} {b.Loss:F6}");
    }

    static double Time(StepRunner run)
    {
        var t0 = Stopwatch.GetTimestamp();
        run.Step();
        return Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
    }

    static double Median(List<double> v)
    {
        var s = v.Order().ToArray();
        return s[s.Length / 2];
    }
}
