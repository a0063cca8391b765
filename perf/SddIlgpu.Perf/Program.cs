// Benchmarks entry point: `dotnet run -c Release -- --filter '*Gemm*'` runs BenchmarkDotNet; `probe` times
// one call of every GEMM case on ilgpu-cpu first, to find the sizes too slow to benchmark there.
using BenchmarkDotNet.Running;
using SddIlgpu.Perf;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Kernels;
using SddIlgpu.Tensors.Ops;

if (args is ["probe", ..])
{
    using var device = Device.Open(args.Length > 1 ? args[1] : "ilgpu-cpu");
    foreach (var shape in GemmBenchmarks.Shapes())
    {
        var (m, n, k) = GemmBenchmarks.Parse(shape);
        var spec = new GemmSpec(m, n, k);
        var (la, lb, lc) = GemmBench.DenseLayouts(spec);
        using var arena = device.Allocate((long)m * k + (long)k * n + (long)m * n, "probe");
        Tensor a = arena.Take(m * k), b = arena.Take(k * n), c = arena.Take(m * n);
        var simple = GemmBench.TimeOnce(device, () => device.Kernels.Gemm.GemmSimple(spec, a, la, b, lb, c, lc));
        Console.WriteLine($"{device.Name} {shape} simple {simple:F3} s ({GemmBench.GFlopsPerSecond(spec, simple):F3} GFLOP/s)");
        if (args.Contains("--skip-tiled") && PerfConfig.TooSlowOnIlgpuCpu.Contains($"tiled/{shape}"))
            continue;
        var tiled = GemmBench.TimeOnce(device, () => device.Kernels.Gemm.GemmTiledOp(spec, a, la, b, lb, c, lc));
        Console.WriteLine($"{device.Name} {shape} tiled  {tiled:F3} s ({GemmBench.GFlopsPerSecond(spec, tiled):F3} GFLOP/s)");
    }
    return;
}

BenchmarkSwitcher.FromAssembly(typeof(GemmBenchmarks).Assembly).Run(args);
