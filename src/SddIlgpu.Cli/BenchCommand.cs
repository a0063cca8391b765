// `sdd bench`: GEMM GFLOP/s, attention time, RMS norm GB/s and training-step tokens/s and MFU on one
// device, medians after warm-up; a table on screen and, with --json, an array of {name, device, metric, value, unit}.
using System.Globalization;
using SddIlgpu.Layers;
using SddIlgpu.Tensors;
using SddIlgpu.Training.Bench;

namespace SddIlgpu.Cli;

public static class BenchCommand
{
    public static readonly Flag[] Flags =
    [
        Flag.Device(),
        new("json", "also write the records to this file (a JSON array)"),
        new("peak-tflops", "the device's FP32 peak for MFU", Default: "the known-device table; measured on CPUs"),
        new("presets", "comma-separated presets to benchmark", Default: "tiny,shakespeare-cpu,baby-gpt"),
        new("quick", "fewer sizes and repetitions (a smoke test, not figures to quote)", IsBool: true),
    ];

    public const string Synopsis = "[--device D] [--json FILE] [--peak-tflops X] [--presets P,..] [--quick]";

    public static int Run(IReadOnlyList<string> argv) => Run(argv, Console.Out);

    internal static int Run(IReadOnlyList<string> argv, TextWriter output)
    {
        var a = CliArgs.Parse(argv, Flags);
        var presets = (a.String("presets") ?? string.Join(",", Benchmarks.DefaultPresets))
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var p in presets)
            if (!ModelConfig.PresetNames.Contains(p))
                throw new UsageException($"--presets: unknown preset '{p}'. Presets: {string.Join(", ", ModelConfig.PresetNames)}.");
        var peak = a.Double("peak-tflops");
        if (peak is <= 0)
            throw new UsageException($"--peak-tflops must be positive; got {peak}.");
        var json = a.String("json");
        using var device = Device.Open(a.String("device", "auto"));
        output.WriteLine($"sdd bench on {device}, ILGPU {Device.IlgpuVersion}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        output.WriteLine($"{"name",-46} {"metric",-18} {"value",12}  unit");
        var records = Benchmarks.Run(device, new BenchOptions(presets, a.Bool("quick") ?? false, peak),
            r => output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{r.Name,-46} {r.Metric,-18} {r.Value,12:F2}  {r.Unit}")),
            note => output.WriteLine($"  note: {note}"));
        if (json is not null)
        {
            BenchJson.Write(json, records);
            output.WriteLine($"Wrote {records.Count} records to {Path.GetFullPath(json)}");
        }
        return 0;
    }
}
