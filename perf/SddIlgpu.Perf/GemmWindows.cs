// `gemm-windows SHAPE...`: each shape's GEMM called back to back (1,000 calls, the last shape 4,000), every call
// timed; for the last shape, the median of each window of 200 calls, so changes of state within a process
// (tiered compilation replacing code, a helper thread that stops keeping up) show as steps in the series,
// and the join wait (WorkerPool.JoinWaitTicks) of its slow and fast calls. Shapes as for `gemm`.
using System.Diagnostics;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Managed;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Perf;

internal static class GemmWindows
{
    public static void Run(string[] shapes)
    {
        using var device = Device.Open("cpu");
        for (var s = 0; s < shapes.Length; s++)
        {
            var last = s == shapes.Length - 1;
            var (spec, la, lb, lc, aLength) = CpuBench.ParseShape(shapes[s]);
            using var arena = device.Allocate(Math.Max(1L << 20, (long)aLength + (long)spec.K * spec.N + (long)spec.M * spec.N), "gemm");
            var (a, b, c) = CpuBench.Operands(arena, spec, aLength);
            var calls = last ? 4000 : 1000;
            double[] time = new double[calls], join = new double[calls];
            for (var i = 0; i < calls; i++)
            {
                var j0 = WorkerPool.JoinWaitTicks;
                var t0 = Stopwatch.GetTimestamp();
                device.Ops.Gemm.Gemm(spec, a, la, b, lb, c, lc);
                time[i] = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
                join[i] = (WorkerPool.JoinWaitTicks - j0) * 1e6 / Stopwatch.Frequency;
            }
            if (!last)
                continue;
            Console.WriteLine($"{shapes[s]}: median us of each 200 calls: " +
                string.Join(" ", time.Chunk(200).Select(w => w.Order().ElementAt(w.Length / 2).ToString("F0"))));
            var p10 = time.Order().ElementAt(calls / 10);
            var slow = Enumerable.Range(0, calls).Where(i => time[i] > 1.25 * p10).ToArray();
            var fast = Enumerable.Range(0, calls).Where(i => time[i] <= 1.25 * p10).ToArray();
            Console.WriteLine($"  calls over 1.25 × p10 ({p10:F1} us): {slow.Length}, mean {Mean(slow, time):F1} us, join wait {Mean(slow, join):F1} us; " +
                $"the rest: {fast.Length}, mean {Mean(fast, time):F1} us, join wait {Mean(fast, join):F1} us");
        }
    }

    static double Mean(int[] idx, double[] xs) => idx.Length == 0 ? 0 : idx.Average(i => xs[i]);
}
