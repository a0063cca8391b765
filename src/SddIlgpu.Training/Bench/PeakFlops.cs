// FP32 peak of the device, for MFU: vendor figures (non-tensor-core FP32, dense) for known GPUs, and for
// CPUs a measured peak of register-resident fused multiply-adds on every core (no memory traffic).
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
            return (measured, $"measured: {Environment.ProcessorCount} cores x register-only {(Fma.IsSupported ? "FMA" : "mul+add")} loop on {Vector256<float>.Count}-wide vectors");
        }
        return Lookup(device.Description) is { } known
            ? (known, "vendor FP32 peak of " + device.Description)
            : (null, $"'{device.Description}' is not in the table; pass --peak-tflops");
    }

    /// <summary>FLOP/s of 8 independent FMA chains of Vector256 per core, on all cores at once (best of 3).</summary>
    public static double MeasureCpu()
    {
        const int Iterations = 4_000_000;
        var cores = Environment.ProcessorCount;
        double best = 0;
        for (var trial = 0; trial < 3; trial++)
        {
            var sw = Stopwatch.StartNew();
            var sink = new float[cores];
            Parallel.For(0, cores, new ParallelOptions { MaxDegreeOfParallelism = cores }, c => sink[c] = FmaLoop(Iterations, c));
            var flops = (double)cores * Iterations * 8 * Vector256<float>.Count * 2;
            best = Math.Max(best, flops / sw.Elapsed.TotalSeconds);
            GC.KeepAlive(sink);
        }
        return best;
    }

    static float FmaLoop(int iterations, int seed)
    {
        var a = Vector256.Create(0.999f + seed * 1e-6f);
        var b = Vector256.Create(1e-4f);
        Vector256<float> c0 = a, c1 = a, c2 = a, c3 = a, c4 = a, c5 = a, c6 = a, c7 = a;
        for (var i = 0; i < iterations; i++)
        {
            if (Fma.IsSupported)
            {
                c0 = Fma.MultiplyAdd(c0, a, b); c1 = Fma.MultiplyAdd(c1, a, b); c2 = Fma.MultiplyAdd(c2, a, b); c3 = Fma.MultiplyAdd(c3, a, b);
                c4 = Fma.MultiplyAdd(c4, a, b); c5 = Fma.MultiplyAdd(c5, a, b); c6 = Fma.MultiplyAdd(c6, a, b); c7 = Fma.MultiplyAdd(c7, a, b);
            }
            else
            {
                c0 = c0 * a + b; c1 = c1 * a + b; c2 = c2 * a + b; c3 = c3 * a + b;
                c4 = c4 * a + b; c5 = c5 * a + b; c6 = c6 * a + b; c7 = c7 * a + b;
            }
        }
        return Vector256.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7);
    }
}
