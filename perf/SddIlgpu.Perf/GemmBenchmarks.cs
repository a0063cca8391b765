// GFLOP/s of the tiled GEMM kernel against the simple reference kernel, square and at model shapes
// (M = B·T = 768 rows, N = 128 / 344 / 65, K = 128 for the shakespeare-cpu preset). Each case checks the
// tiled result against the simple kernel before it is timed; every timed call ends with a synchronisation.
using BenchmarkDotNet.Attributes;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Kernels;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Perf;

[Config(typeof(PerfConfig))]
public class GemmBenchmarks
{
    Device device = null!;
    Arena arena = null!;
    Tensor a = null!, b = null!, c = null!;
    GemmSpec spec;
    MatrixLayout la, lb, lc;

    /// <summary>ilgpu-cpu always, cuda and opencl when this machine has them.</summary>
    public static IEnumerable<string> Devices() =>
        new[] { "ilgpu-cpu" }.Concat(Device.List().Where(d => d.Usable && d.Kind is BackendKind.Cuda or BackendKind.OpenCL).Select(d => d.Name));

    public static IEnumerable<string> Shapes() =>
        ["256x256x256", "512x512x512", "1024x1024x1024", "768x128x128", "768x344x128", "768x65x128"];

    [ParamsSource(nameof(Devices))]
    public string DeviceName { get; set; } = "ilgpu-cpu";

    /// <summary>M×N×K.</summary>
    [ParamsSource(nameof(Shapes))]
    public string Shape { get; set; } = "256x256x256";

    [Params("tiled", "simple")]
    public string Kernel { get; set; } = "tiled";

    public static (int M, int N, int K) Parse(string shape)
    {
        var p = shape.Split('x').Select(int.Parse).ToArray();
        return (p[0], p[1], p[2]);
    }

    [GlobalSetup]
    public void Setup()
    {
        device = Device.Open(DeviceName);
        var (m, n, k) = Parse(Shape);
        spec = new GemmSpec(m, n, k);
        (la, lb, lc) = GemmBench.DenseLayouts(spec);
        arena = device.Allocate((long)m * k + (long)k * n + (long)m * n, "bench.gemm");
        a = arena.Take(m * k, "a");
        b = arena.Take(k * n, "b");
        c = arena.Take(m * n, "c");
        device.Ops.Random.FillUniform(a, 1, 0);
        device.Ops.Random.FillUniform(b, 1, 1);
        var error = GemmBench.TiledVsSimple(device.Kernels.Gemm, spec, a, b, c);
        if (!(error <= 1e-4))
            throw new InvalidOperationException($"Tiled GEMM {Shape} on {DeviceName} differs from the simple kernel by {error:G3}; not timing it.");
    }

    [Benchmark]
    public void Gemm()
    {
        if (Kernel == "tiled")
            device.Kernels.Gemm.GemmTiledOp(spec, a, la, b, lb, c, lc);
        else
            device.Kernels.Gemm.GemmSimple(spec, a, la, b, lb, c, lc);
        device.Synchronize();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        arena.Dispose();
        device.Dispose();
    }
}
