// One short in-process job (1 launch, 1 warm-up, 3 iterations: the CPU accelerator is slow), a GFLOP/s
// column computed from the median, and a filter dropping the cases too slow to time on ilgpu-cpu.
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Filters;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace SddIlgpu.Perf;

public sealed class PerfConfig : ManualConfig
{
    /// <summary>Cases that take more than ~30 s per call on ilgpu-cpu (measured with `probe`); never timed there.</summary>
    public static readonly string[] TooSlowOnIlgpuCpu = ["tiled/512x512x512", "tiled/1024x1024x1024"];

    public PerfConfig()
    {
        AddJob(Job.Default.WithLaunchCount(1).WithWarmupCount(1).WithIterationCount(3)
            .WithToolchain(InProcessEmitToolchain.Instance));
        AddColumn(new GflopsColumn());
        AddColumn(StatisticColumn.Median);
        AddFilter(new SimpleFilter(bc =>
            !(bc.Parameters["DeviceName"] is "ilgpu-cpu" && TooSlowOnIlgpuCpu.Contains($"{bc.Parameters["Kernel"]}/{bc.Parameters["Shape"]}"))));
    }
}

/// <summary>2·M·N·K / median time, from the benchmark's Shape parameter.</summary>
public sealed class GflopsColumn : IColumn
{
    public string Id => nameof(GflopsColumn);
    public string ColumnName => "GFLOP/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "2·M·N·K floating-point operations / median time";

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase)
    {
        var stats = summary[benchmarkCase]?.ResultStatistics;
        if (stats is null || benchmarkCase.Parameters["Shape"] is not string shape)
            return "NA";
        var (m, n, k) = GemmBenchmarks.Parse(shape);
        return (2.0 * m * n * k / stats.Median).ToString("F3", System.Globalization.CultureInfo.InvariantCulture);
    }

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) => GetValue(summary, benchmarkCase);
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;
}
