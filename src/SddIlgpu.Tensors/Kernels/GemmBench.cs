// Counting and validation helpers for GEMM benchmarks (perf/ and a later `sdd bench`): a GEMM does
// 2·M·N·K floating-point operations per matrix; the tiled kernel must match the simple one before it is timed.
using System.Diagnostics;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Kernels;

internal static class GemmBench
{
    /// <summary>Floating-point operations of one call: 2·M·N·K per matrix (the β·C update is not counted).</summary>
    public static double Flops(in GemmSpec s) => 2.0 * s.M * s.N * s.K * s.BatchCount;

    public static double GFlopsPerSecond(in GemmSpec s, double seconds) => Flops(s) / seconds / 1e9;

    /// <summary>Contiguous row-major operands for <paramref name="s"/> (one matrix each, no batch).</summary>
    public static (MatrixLayout A, MatrixLayout B, MatrixLayout C) DenseLayouts(in GemmSpec s) =>
        (new(s.TransA ? s.M : s.K), new(s.TransB ? s.K : s.N), new(s.N));

    /// <summary>
    /// Runs the tiled and the simple kernel on the same inputs and returns the largest
    /// |tiled − simple| / (1 + |simple|); callers refuse to time a kernel whose result is off.
    /// </summary>
    public static double TiledVsSimple(GemmKernels gemm, in GemmSpec s, Tensor a, Tensor b, Tensor c)
    {
        var (la, lb, lc) = DenseLayouts(s);
        gemm.GemmSimple(s, a, la, b, lb, c, lc);
        var simple = c.ToArray();
        gemm.GemmTiledOp(s, a, la, b, lb, c, lc);
        var tiled = c.ToArray();
        double worst = 0;
        for (var i = 0; i < tiled.Length; i++)
            worst = Math.Max(worst, double.IsFinite(tiled[i]) ? Math.Abs(tiled[i] - simple[i]) / (1 + Math.Abs(simple[i])) : double.PositiveInfinity);
        return worst;
    }

    /// <summary>Seconds of one synchronised call (a quick probe, not a benchmark).</summary>
    public static double TimeOnce(Device device, Action op)
    {
        var watch = Stopwatch.StartNew();
        op();
        device.Synchronize();
        return watch.Elapsed.TotalSeconds;
    }
}
