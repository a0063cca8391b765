// Issue 14 item 4: the step's memory-bound ops timed alone at baby-gpt's shapes on the `cpu` device (SwiGLU, SDD
// RMS norm over 384 and 1024 features and per 64-wide head, RoPE), each the best and median of rounds of calls, with the bytes each call
// must move and the rate that gives. `ops [ROUNDS]`. In the step the same ops read operands other ops just wrote.
using System.Diagnostics;
using SddIlgpu.Tensors;
using SddIlgpu.Training.Bench;

namespace SddIlgpu.Perf;

internal static class OpsBench
{
    const int CallsPerRound = 20;

    public static void Run(int rounds)
    {
        using var device = Device.Open("cpu");
        var ops = device.Ops;
        const int n = 1024, c = 384, f = 1024, hs = 64;
        using var arena = device.Allocate(2L * n * 2 * f + 2L * n * f + 6L * n * f + 8 * n + (long)256 * hs + f, "bench.ops");
        Tensor upGate = arena.Take(new Shape(n, 2 * f)), dUpGate = arena.Take(new Shape(n, 2 * f)), s = arena.Take(new Shape(n, f)),
            dS = arena.Take(new Shape(n, f)), x = arena.Take(new Shape(n, f)), y = arena.Take(new Shape(n, f)), dY = arena.Take(new Shape(n, f)),
            dX = arena.Take(new Shape(n, f)), rstd = arena.Take(new Shape(n)), rstd6 = arena.Take(new Shape(6 * n)), gain = arena.Take(new Shape(f)), table = arena.Take(new Shape(256, hs));
        foreach (var (t, stream) in new[] { (upGate, 1ul), (dS, 2ul), (x, 3ul), (dY, 4ul), (gain, 5ul), (table, 6ul) })
            ops.Random.FillUniform(t, 11, stream);
        Tensor Part(Tensor t, params int[] dims) => t.Slice(0, new Shape(dims));
        Tensor X(int cols) => Part(x, n, cols);
        var cases = new (string Name, long Bytes, Action Call)[]
        {
            ("swiglu forward (1024, 2048) -> (1024, 1024)", 4L * n * 3 * f, () => ops.Activation.SwiGluForward(upGate, s)),
            ("swiglu backward", 4L * n * 5 * f, () => ops.Activation.SwiGluBackward(dS, upGate, dUpGate)),
            ("rms norm forward (1024, 384), gain", 4L * n * 2 * c, () => ops.Norm.Forward(X(c), Part(gain, c), Part(y, n, c), rstd, c, 1e-5f)),
            ("rms norm backward (1024, 384), gain", 4L * n * 3 * c, () => ops.Norm.Backward(Part(dY, n, c), X(c), Part(gain, c), rstd, Part(dX, n, c), null, c)),
            ("rms norm forward (1024, 384), heads of 64", 4L * n * 2 * c, () => ops.Norm.Forward(X(c), Part(gain, hs), Part(y, n, c), rstd6, hs, 1e-5f)),
            ("rms norm backward (1024, 384), heads of 64", 4L * n * 3 * c, () => ops.Norm.Backward(Part(dY, n, c), X(c), Part(gain, hs), rstd6, Part(dX, n, c), null, hs)),
            ("rms norm forward (1024, 1024), gain", 4L * n * 2 * f, () => ops.Norm.Forward(x, gain, y, rstd, f, 1e-5f)),
            ("rms norm backward (1024, 1024), gain", 4L * n * 3 * f, () => ops.Norm.Backward(dY, x, gain, rstd, dX, null, f)),
            ("rope forward (4, 256, 6, 64)", 4L * n * 2 * c, () => ops.Rope.Forward(X(c), Part(y, n, c), table, hs)),
        };
        Console.WriteLine($"ops at baby-gpt shapes on cpu, {Tensors.Managed.ManagedSimd.Workers} worker(s): {rounds} rounds of {CallsPerRound} calls after a warm-up");
        foreach (var (name, bytes, call) in cases)
        {
            BenchTiming.WarmUp(call, 50);
            var perCall = new List<double>();
            for (var r = 0; r < rounds; r++)
            {
                var t0 = Stopwatch.GetTimestamp();
                for (var i = 0; i < CallsPerRound; i++)
                    call();
                perCall.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds / CallsPerRound);
            }
            perCall.Sort();
            double best = perCall[0], median = perCall[perCall.Count / 2];
            Console.WriteLine($"{name,-46} median {median * 1000,8:F1} us  best {best * 1000,8:F1} us  {bytes / best / 1e6,6:F1} GB/s at best");
        }
    }
}
