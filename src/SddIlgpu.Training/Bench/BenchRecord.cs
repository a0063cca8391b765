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
    /// Median seconds of <paramref name="run"/> over up to <paramref name="reps"/> timed runs after at least
    /// <paramref name="warmup"/> untimed ones (more, up to 200, until a quarter second has passed); stops adding runs once <paramref name="budgetSeconds"/> are spent
    /// (at least one timed run). Every run is followed by <see cref="Device.Synchronize"/>.
    /// </summary>
    public static (double Median, int Runs) Median(Device device, Action run, int warmup, int reps, double budgetSeconds)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(run);
        // Warm up for at least `warmup` runs and a quarter second: the JIT tiers hot managed code up after
        // about 30 calls, and the first GEMMs of a run would otherwise time unoptimised code.
        var warm = Stopwatch.StartNew();
        for (var i = 0; i < warmup || (warm.Elapsed.TotalSeconds < 0.25 && i < 200); i++)
        {
            run();
            device.Synchronize();
        }
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
