// Benchmarks entry point: `dotnet run -c Release -- --filter '*Gemm*'` runs BenchmarkDotNet; `probe` times
// one call of every GEMM case on ilgpu-cpu first, to find the sizes too slow to benchmark there; `kernels` prints
// the kernel report (ptxas resources, occupancy, launch geometry at baby-gpt sizes, GEMM loop mix; docs/kernels.md);
// `kernel-source NAME DIR` writes that kernel's PTX and OpenCL C (what the report and the devices compile) to DIR.
// The CPU figures of issue 6 come from the plain timing modes below.
using BenchmarkDotNet.Running;
using SddIlgpu.Perf;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Kernels;
using SddIlgpu.Tensors.Ops;

// CPU figures of issue 6 (plain timing loops, see CpuBench): peak | gemm [--cold] [wgrad | shape...] | gemm-windows SHAPE... | step PRESET DEVICE BATCH
// [STEPS] [WARMUP] | profile PRESET BATCH [STEPS] | allreduce [FLOATS...] (under mpirun, docs/distributed.md).
// Data figures of issue 12: corpus MB FILE | encode-baseline FILE KIND | first-step BIG_DIR SMALL_DIR [ROUNDS]. Issue 14: attention PRESET BATCH [ROUNDS] | ops [ROUNDS] | step-ab PRESET BATCH PAIRS (fused vs separate ops)
// (fused vs materialised managed attention, forward + backward, alternating rounds).
// SDD_PERF_SMALL_PAGES=1: host arenas keep 4 KiB pages (to measure what transparent huge pages buy, docs/perf.md).
if (Environment.GetEnvironmentVariable("SDD_PERF_SMALL_PAGES") == "1")
    Arena.HugePagesEnabled = false;

switch (args)
{
    case ["kernels", ..]:
        Environment.Exit(KernelReport.Run(Console.Out));
        return;
    case ["kernel-source", var name, var dir]:
        Environment.Exit(KernelReport.WriteSources(name, dir));
        return;
    case ["gemm-windows", .. var windowShapes] when windowShapes.Length > 0:
        GemmWindows.Run(windowShapes);
        return;
    case ["peak", ..]:
        CpuBench.Peak();
        return;
    case ["gemm", "--cold", .. var coldShapes]:
        CpuBench.Gemm(coldShapes is ["wgrad"] ? CpuBench.WeightGradShapes : coldShapes.Length > 0 ? coldShapes : CpuBench.ModelShapes, CpuBench.Peak(), cold: true);
        return;
    case ["gemm", .. var shapes]:
        var peak = CpuBench.Peak();
        CpuBench.Gemm(shapes is ["wgrad"] ? CpuBench.WeightGradShapes : shapes.Length > 0 ? shapes : CpuBench.ModelShapes, peak);
        return;
    case ["step", var preset, var dev, var batch, .. var rest]:
        CpuBench.Step(preset, dev, int.Parse(batch), rest.Length > 1 ? int.Parse(rest[1]) : 5, rest.Length > 0 ? int.Parse(rest[0]) : 30);
        return;
    case ["corpus", var mb, var path]:
        DataBench.Corpus(int.Parse(mb, System.Globalization.CultureInfo.InvariantCulture), path);
        return;
    case ["encode-scaling", var path, .. var rest]:
        DataBench.EncodeScaling(path, rest.Length > 0 ? int.Parse(rest[0]) : 3);
        return;
    case ["encode-baseline", var path, var kind]:
        DataBench.EncodeBaseline(path, kind);
        return;
    case ["first-step", var big, var small, .. var rest]:
        DataBench.FirstStep(big, small, rest.Length > 0 ? int.Parse(rest[0]) : 3);
        return;
    case ["allreduce", .. var floats]:
        AllReduceBench.Run(floats.Length > 0 ? [.. floats.Select(long.Parse)] : [1_000, 100_000, 1_000_000, 10_000_000]);
        return;
    case ["attention", var preset, var batch, .. var rest]:
        AttentionBench.Run(preset, int.Parse(batch), rest.Length > 0 ? int.Parse(rest[0]) : 9);
        return;
    case ["step-ab", var preset, var batch, var pairs]:
        StepAb.Run(preset, int.Parse(batch), int.Parse(pairs));
        return;
    case ["ops", .. var rest]:
        OpsBench.Run(rest.Length > 0 ? int.Parse(rest[0]) : 15);
        return;
    case ["profile", var preset, var batch, .. var rest]:
        OpProfiler.Run(preset, int.Parse(batch), rest.Length > 0 ? int.Parse(rest[0]) : 30);
        return;
}

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
