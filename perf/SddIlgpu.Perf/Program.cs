// Entry point of the benchmarks: BenchmarkDotNet picks classes by --filter.
using BenchmarkDotNet.Running;

namespace SddIlgpu.Perf;

public static class Program
{
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
