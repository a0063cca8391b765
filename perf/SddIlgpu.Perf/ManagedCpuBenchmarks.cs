// Benchmarks of the managed CPU path: the machine's FP32 peak (independent FMA chains on every core) and
// the managed GEMM at the model's shapes and at square 256/512/1024. GFLOP/s = 2·M·N·K / mean time.
// Run: dotnet run -c Release --project perf/SddIlgpu.Perf -- --filter '*Managed*'
using System.Runtime.Intrinsics;
using BenchmarkDotNet.Attributes;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Perf;

/// <summary>FP32 peak: 12 independent FMA chains of the widest vector per core, one thread per core.</summary>
[MemoryDiagnoser(false)]
public class ManagedPeakFmaBenchmarks
{
    /// <summary>FMA iterations per core; FLOPs = Iterations · 12 · lanes · 2 · cores.</summary>
    public const long Iterations = 20_000_000;

    public static long Flops => Iterations * 12 * (Vector512.IsHardwareAccelerated ? 16 : 8) * 2 * Environment.ProcessorCount;

    [Benchmark(Description = "peak FMA, all cores")]
    public float PeakFma()
    {
        var sums = new float[Environment.ProcessorCount];
        Parallel.For(0, sums.Length, new ParallelOptions { MaxDegreeOfParallelism = sums.Length }, p =>
            sums[p] = Vector512.IsHardwareAccelerated ? Chains512(Iterations) : Chains256(Iterations));
        return sums.Sum();
    }

    /// <summary>The peak loop on the calling thread (also timed by CpuBench outside BenchmarkDotNet).</summary>
    internal static float Chains(long n) => Vector512.IsHardwareAccelerated ? Chains512(n) : Chains256(n);

    static float Chains512(long n)
    {
        var x = Vector512.Create(1.0000001f);
        var y = Vector512.Create(0.9999999f);
        Vector512<float> a0 = x, a1 = x, a2 = x, a3 = x, a4 = x, a5 = x, a6 = x, a7 = x, a8 = x, a9 = x, a10 = x, a11 = x;
        for (long i = 0; i < n; i++)
        {
            a0 = Vector512.FusedMultiplyAdd(a0, y, x); a1 = Vector512.FusedMultiplyAdd(a1, y, x);
            a2 = Vector512.FusedMultiplyAdd(a2, y, x); a3 = Vector512.FusedMultiplyAdd(a3, y, x);
            a4 = Vector512.FusedMultiplyAdd(a4, y, x); a5 = Vector512.FusedMultiplyAdd(a5, y, x);
            a6 = Vector512.FusedMultiplyAdd(a6, y, x); a7 = Vector512.FusedMultiplyAdd(a7, y, x);
            a8 = Vector512.FusedMultiplyAdd(a8, y, x); a9 = Vector512.FusedMultiplyAdd(a9, y, x);
            a10 = Vector512.FusedMultiplyAdd(a10, y, x); a11 = Vector512.FusedMultiplyAdd(a11, y, x);
        }
        return Vector512.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }

    static float Chains256(long n)
    {
        var x = Vector256.Create(1.0000001f);
        var y = Vector256.Create(0.9999999f);
        Vector256<float> a0 = x, a1 = x, a2 = x, a3 = x, a4 = x, a5 = x, a6 = x, a7 = x, a8 = x, a9 = x, a10 = x, a11 = x;
        for (long i = 0; i < n; i++)
        {
            a0 = Vector256.FusedMultiplyAdd(a0, y, x); a1 = Vector256.FusedMultiplyAdd(a1, y, x);
            a2 = Vector256.FusedMultiplyAdd(a2, y, x); a3 = Vector256.FusedMultiplyAdd(a3, y, x);
            a4 = Vector256.FusedMultiplyAdd(a4, y, x); a5 = Vector256.FusedMultiplyAdd(a5, y, x);
            a6 = Vector256.FusedMultiplyAdd(a6, y, x); a7 = Vector256.FusedMultiplyAdd(a7, y, x);
            a8 = Vector256.FusedMultiplyAdd(a8, y, x); a9 = Vector256.FusedMultiplyAdd(a9, y, x);
            a10 = Vector256.FusedMultiplyAdd(a10, y, x); a11 = Vector256.FusedMultiplyAdd(a11, y, x);
        }
        return Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }
}

/// <summary>
/// Managed GEMM on the <c>cpu</c> device. Forms: "xWt" = x·Wᵀ (forward), "dYW" = dY·W (input gradient),
/// "dYtX" = dYᵀ·X with β = 1 (weight gradient), "sq" = square A·B.
/// </summary>
public class ManagedGemmBenchmarks
{
    Device device = null!;
    Tensor a = null!, b = null!, c = null!;
    GemmSpec spec;
    MatrixLayout la, lb, lc;

    [Params("xWt 768x344x128", "xWt 768x128x128", "xWt 768x65x128", "dYW 768x128x344", "dYW 768x128x65",
        "dYtX 344x128x768", "dYtX 128x128x768", "dYtX 65x128x768", "xWt 512x64x64", "sq 256", "sq 512", "sq 1024")]
    public string Shape { get; set; } = "sq 256";

    [GlobalSetup]
    public void Setup()
    {
        device = Device.Open("cpu");
        var parts = Shape.Split(' ');
        var dims = parts[1].Split('x').Select(int.Parse).ToArray();
        int m = dims[0], n = dims.Length > 1 ? dims[1] : m, k = dims.Length > 2 ? dims[2] : m;
        var (ta, tb, beta) = parts[0] switch { "xWt" => (false, true, 0f), "dYtX" => (true, false, 1f), _ => (false, false, 0f) };
        spec = new GemmSpec(m, n, k, ta, tb, 1f, beta);
        la = new MatrixLayout(ta ? m : k);
        lb = new MatrixLayout(tb ? k : n);
        lc = new MatrixLayout(n);
        a = device.AllocateTensor(m * k, "a");
        b = device.AllocateTensor(k * n, "b");
        c = device.AllocateTensor(m * n, "c");
        var r = new Random(1);
        a.Upload(Enumerable.Range(0, m * k).Select(_ => (float)r.NextDouble() - 0.5f).ToArray());
        b.Upload(Enumerable.Range(0, k * n).Select(_ => (float)r.NextDouble() - 0.5f).ToArray());
    }

    [GlobalCleanup]
    public void Cleanup() => device.Dispose();

    [Benchmark(Description = "managed GEMM")]
    public void Gemm() => device.Ops.Gemm.Gemm(spec, a, la, b, lb, c, lc);
}
