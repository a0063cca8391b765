// `sdd bench`: GEMM GFLOP/s, attention time, RMS norm GB/s and training-step tokens/s and MFU on one
// device, medians after warm-up; a table on screen and, with --json, an array of {name, device, metric, value, unit}.
using System.CommandLine;
using System.Globalization;
using SddIlgpu.Layers;
using SddIlgpu.Tensors;
using SddIlgpu.Training.Bench;
using static SddIlgpu.Cli.CliOptions;

namespace SddIlgpu.Cli;

public static class BenchCommand
{
    public static Command Create(TextWriter? output = null)
    {
        var device = CliOptions.DeviceOption();
        var json = Text("--json", "also write the records to this file (a JSON array)", "FILE");
        var peak = Optional<double>("--peak-tflops", "the device's FP32 peak in TFLOP/s, for MFU (default: the known-device table; measured on CPUs)").Positive();
        var presets = With("--presets", "comma-separated presets to benchmark", string.Join(",", Benchmarks.DefaultPresets), "P,..");
        presets.Validators.Add(r =>
        {
            foreach (var p in Split(r.GetValueOrDefault<string>()))
                if (!ModelConfig.PresetNames.Contains(p))
                    r.AddError($"--presets: unknown preset '{p}'. Presets: {string.Join(", ", ModelConfig.PresetNames)}.");
        });
        var quick = Switch("--quick", "fewer sizes and repetitions (a smoke test, not figures to quote)");
        var command = new Command("bench", "GEMM, attention, norm and training-step speed of a device") { device, json, peak, presets, quick };
        command.SetAction(p => Run(p.GetValue(device)!, new BenchOptions(Split(p.GetValue(presets)), p.GetValue(quick), p.GetValue(peak)),
            p.GetValue(json), output ?? Console.Out));
        return command;
    }

    /// <summary>Parses and runs <c>sdd bench ARGS</c>, writing to <paramref name="output"/>; a usage mistake throws <see cref="UsageException"/>.</summary>
    internal static int Run(IReadOnlyList<string> argv, TextWriter output) => Program.Invoke(Create(output), argv);

    static string[] Split(string? list) =>
        (list ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    static int Run(string deviceName, BenchOptions options, string? json, TextWriter output)
    {
        if (options.Presets.Count == 0)
            throw new UsageException("--presets is empty; give a comma-separated list such as tiny,baby-gpt.");
        using var device = Device.Open(deviceName);
        output.WriteLine($"sdd bench on {device}, ILGPU {Device.IlgpuVersion}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        output.WriteLine($"{"name",-46} {"metric",-18} {"value",12}  unit");
        var records = Benchmarks.Run(device, options,
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
