// FP32 peak of the device, for MFU: vendor figures (non-tensor-core FP32, dense) for known GPUs, and for
// CPUs cores × the measured rate of register-resident fused multiply-adds on one thread (no memory traffic).
using System.Diagnostics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SddIlgpu.Tensors;

namespace SddIlgpu.Training.Bench;

public static class PeakFlops
{
    /// <summary>(substring of the device name, FP32 TFLOPS). First match wins, so specific names come first.</summary>
    static readonly (string Pattern, double Tflops)[] Known =
    [
        ("H100 PCIe", 51.2), ("H100 NVL", 60.0), ("GH200", 67.0), ("H200", 67.0), ("H100", 67.0),
        ("A100", 19.5), ("A10G", 31.2), ("A10", 31.2), ("L40S", 91.6), ("L40", 90.5), ("L4", 30.3),
        ("RTX 4090", 82.6), ("RTX 3090", 35.6), ("V100", 15.7), ("T4", 8.1),
        ("MI300X", 163.4), ("MI250X", 47.9), ("MI250", 45.3), ("MI210", 22.6),
    ];

    /// <summary>The known FP32 peak of a GPU whose name contains a table entry, or null.</summary>
    public static double? Lookup(string deviceName)
    {
        ArgumentNullException.ThrowIfNull(deviceName);
        foreach (var (pattern, tflops) in Known)
            if (deviceName.Contains(pattern, StringComparison.OrdinalIgnoreCase))
                return tflops * 1e12;
        return null;
    }

    /// <summary>The peak FLOP/s MFU divides by, and where it came from.</summary>
    public static (double? Flops, string Source) For(Device device, double? overrideTflops)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (overrideTflops is { } t)
            return (t * 1e12, "--peak-tflops");
        if (device.IsHostMemory)
        {
            var measured = MeasureCpu();
            return (measured, $"measured: {Environment.ProcessorCount} cores x one thread's register-only {(Fma.IsSupported ? "FMA" : "mul+add")} rate on {CpuLanes}-wide vectors");
        }
        return Lookup(device.Description) is { } known
            ? (known, "vendor FP32 peak of " + device.Description)
            : (null, $"'{device.Description}' is not in the table; pass --peak-tflops");
    }

    /// <summary>Lanes of the widest vector the JIT accelerates (16 with AVX-512, 8 with AVX2).</summary>
    public static int CpuLanes => Vector512.IsHardwareAccelerated && Avx512F.IsSupported ? Vector512<float>.Count : Vector256<float>.Count;

    /// <summary>
    /// Cores × the FLOP/s of one thread running 16 independent FMA chains on the widest vectors (best of 3).
    /// One thread is measured and multiplied because a busy machine makes concurrent threads interfere; with
    /// SMT (two logical cores per physical core) this overstates the peak, so MFU is then understated.
    /// </summary>
    public static double MeasureCpu()
    {
        const int Iterations = 20_000_000; // about 0.15 s per trial at 150 GFLOP/s per core
        var wide = CpuLanes == Vector512<float>.Count;
        double best = 0;
        for (var trial = 0; trial < 4; trial++)
        {
            var sw = Stopwatch.StartNew();
            var sink = wide ? FmaLoop512(trial == 0 ? 1000 : Iterations) : FmaLoop256(trial == 0 ? 1000 : Iterations);
            if (trial > 0)
                best = Math.Max(best, (double)Iterations * 16 * CpuLanes * 2 / sw.Elapsed.TotalSeconds);
            GC.KeepAlive(sink);
        }
        return best * Environment.ProcessorCount;
    }

    static float FmaLoop512(int iterations)
    {
        var a = Vector512.Create(0.999f);
        var b = Vector512.Create(1e-4f);
        Vector512<float> c0 = a, c1 = a, c2 = a, c3 = a, c4 = a, c5 = a, c6 = a, c7 = a;
        Vector512<float> d0 = a, d1 = a, d2 = a, d3 = a, d4 = a, d5 = a, d6 = a, d7 = a;
        for (var i = 0; i < iterations; i++)
        {
            c0 = Avx512F.FusedMultiplyAdd(c0, a, b); c1 = Avx512F.FusedMultiplyAdd(c1, a, b); c2 = Avx512F.FusedMultiplyAdd(c2, a, b); c3 = Avx512F.FusedMultiplyAdd(c3, a, b);
            c4 = Avx512F.FusedMultiplyAdd(c4, a, b); c5 = Avx512F.FusedMultiplyAdd(c5, a, b); c6 = Avx512F.FusedMultiplyAdd(c6, a, b); c7 = Avx512F.FusedMultiplyAdd(c7, a, b);
            d0 = Avx512F.FusedMultiplyAdd(d0, a, b); d1 = Avx512F.FusedMultiplyAdd(d1, a, b); d2 = Avx512F.FusedMultiplyAdd(d2, a, b); d3 = Avx512F.FusedMultiplyAdd(d3, a, b);
            d4 = Avx512F.FusedMultiplyAdd(d4, a, b); d5 = Avx512F.FusedMultiplyAdd(d5, a, b); d6 = Avx512F.FusedMultiplyAdd(d6, a, b); d7 = Avx512F.FusedMultiplyAdd(d7, a, b);
        }
        return Vector512.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + d0 + d1 + d2 + d3 + d4 + d5 + d6 + d7);
    }

    static float FmaLoop256(int iterations)
    {
        var a = Vector256.Create(0.999f);
        var b = Vector256.Create(1e-4f);
        Vector256<float> c0 = a, c1 = a, c2 = a, c3 = a, c4 = a, c5 = a, c6 = a, c7 = a;
        Vector256<float> d0 = a, d1 = a, d2 = a, d3 = a, d4 = a, d5 = a, d6 = a, d7 = a;
        for (var i = 0; i < iterations; i++)
        {
            c0 = Mad(c0, a, b); c1 = Mad(c1, a, b); c2 = Mad(c2, a, b); c3 = Mad(c3, a, b);
            c4 = Mad(c4, a, b); c5 = Mad(c5, a, b); c6 = Mad(c6, a, b); c7 = Mad(c7, a, b);
            d0 = Mad(d0, a, b); d1 = Mad(d1, a, b); d2 = Mad(d2, a, b); d3 = Mad(d3, a, b);
            d4 = Mad(d4, a, b); d5 = Mad(d5, a, b); d6 = Mad(d6, a, b); d7 = Mad(d7, a, b);
        }
        return Vector256.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + d0 + d1 + d2 + d3 + d4 + d5 + d6 + d7);
    }

    static Vector256<float> Mad(Vector256<float> c, Vector256<float> a, Vector256<float> b) => Fma.IsSupported ? Fma.MultiplyAdd(c, a, b) : c * a + b;
}
