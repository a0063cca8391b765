// Benchmark records and their timing: the median of repeated runs after warm-up, each run ending in a
// device synchronisation, written as a JSON array of {name, device, metric, value, unit} (sdd bench --json).
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using SddIlgpu.Tensors;

namespace SddIlgpu.Training.Bench;

/// <summary>One measured figure, e.g. (train-step/tiny, cuda:0 (NVIDIA H100), throughput, 123456, tokens/s).</summary>
public sealed record BenchRecord(string Name, string Device, string Metric, double Value, string Unit);

public static class BenchTiming
{
    /// <summary>
    /// Runs <paramref name="run"/> until the JIT has settled: at least <paramref name="minRuns"/> runs, then until
    /// <paramref name="quietSeconds"/> of them have passed with no method compiled anywhere in the process
    /// (<see cref="System.Runtime.JitInfo.GetCompiledMethodCount"/>), or <paramref name="maxSeconds"/> in all. .NET
    /// first compiles a method unoptimised (tier 0) and recompiles it optimised once it has been called 30 times and
    /// no new tier-0 method has appeared for 100 ms ("tiered compilation", learn.microsoft.com/dotnet/core/runtime-config/compilation).
    /// A code path a new shape takes for the first time (a GEMM's partial last column panel) so runs unoptimised for
    /// its first 100–200 ms: 1,400–2,400 calls of a 62 µs GEMM measured at 92–120 µs (docs/perf.md), which a count of
    /// warm-up runs does not cover. Returns the number of runs.
    /// </summary>
    public static int WarmUp(Action run, int minRuns, double quietSeconds = 0.3, double maxSeconds = 10)
    {
        ArgumentNullException.ThrowIfNull(run);
        var clock = Stopwatch.StartNew();
        var compiled = System.Runtime.JitInfo.GetCompiledMethodCount();
        var lastCompile = 0.0;
        var runs = 0;
        while (true)
        {
            run();
            runs++;
            var now = clock.Elapsed.TotalSeconds;
            var count = System.Runtime.JitInfo.GetCompiledMethodCount();
            if (count != compiled)
                (compiled, lastCompile) = (count, now);
            if ((runs >= minRuns && now - lastCompile >= quietSeconds) || now >= maxSeconds)
                return runs;
        }
    }

    /// <summary>
    /// Median seconds of <paramref name="run"/> over up to <paramref name="reps"/> timed runs after at least
    /// <paramref name="warmup"/> untimed ones, more until the JIT has settled (<see cref="WarmUp"/>, at most the budget or
    /// 2 s); stops adding runs once <paramref name="budgetSeconds"/> are spent
    /// (at least one timed run). Every run is followed by <see cref="Device.Synchronize"/>.
    /// </summary>
    public static (double Median, int Runs) Median(Device device, Action run, int warmup, int reps, double budgetSeconds)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(run);
        WarmUp(() =>
        {
            run();
            device.Synchronize();
        }, warmup, maxSeconds: Math.Max(2, budgetSeconds));
        var times = new List<double>();
        var total = Stopwatch.StartNew();
        while (times.Count < reps && (times.Count == 0 || total.Elapsed.TotalSeconds < budgetSeconds))
        {
            var sw = Stopwatch.StartNew();
            run();
            device.Synchronize();
            times.Add(sw.Elapsed.TotalSeconds);
        }
        times.Sort();
        var n = times.Count;
        return (n % 2 == 1 ? times[n / 2] : (times[n / 2 - 1] + times[n / 2]) / 2, n);
    }
}

public static class BenchJson
{
    /// <summary>An indented JSON array of {name, device, metric, value, unit}, through source-generated System.Text.Json.</summary>
    public static string Serialize(IEnumerable<BenchRecord> records) =>
        JsonSerializer.Serialize(records.ToArray(), BenchJsonContext.Default.BenchRecordArray);

    /// <summary>Parses <see cref="Serialize"/>'s output.</summary>
    /// <exception cref="JsonException">The text is not such an array.</exception>
    public static IReadOnlyList<BenchRecord> Deserialize(string json) =>
        JsonSerializer.Deserialize(json, BenchJsonContext.Default.BenchRecordArray) ?? [];

    /// <summary>Writes the records to a temp file beside <paramref name="path"/> and renames it over the target.</summary>
    public static void Write(string path, IEnumerable<BenchRecord> records)
    {
        var full = Path.GetFullPath(path);
        var tmp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp");
        try
        {
            File.WriteAllText(tmp, Serialize(records) + "\n");
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp))
                File.Delete(tmp);
        }
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[JsonSerializable(typeof(BenchRecord[]))]
internal sealed partial class BenchJsonContext : JsonSerializerContext;
