// `sdd doctor`: device conformance. Runs every op's forward and backward against a float64 reference, then
// whole-model steps against golden fixtures or a second device, and prints one table; exit 1 on any failure.
using System.Globalization;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;
using SddIlgpu.Training.Conformance;

namespace SddIlgpu.Cli;

public static class DoctorCommand
{
    public static readonly Flag[] Flags =
    [
        Flag.Device(),
        new("golden", "folder of golden *.safetensors fixtures (../shared/golden): compare model steps with them"),
        new("reference", "without --golden, the device the model steps are compared with", Default: "ilgpu-cpu, or cpu when --device is ilgpu-cpu"),
        new("ops-only", "skip the whole-model checks", IsBool: true),
    ];

    public const string Synopsis = "[--device D] [--golden DIR] [--reference D] [--ops-only]";

    public static int Run(IReadOnlyList<string> argv) => Run(argv, Console.Out, null);

    /// <summary>With <paramref name="opsFor"/>, the op checks run through that op set (tests inject a broken op).</summary>
    internal static int Run(IReadOnlyList<string> argv, TextWriter output, Func<Device, OpSet>? opsFor)
    {
        var a = CliArgs.Parse(argv, Flags);
        var golden = a.String("golden");
        if (golden is not null && !Directory.Exists(golden))
            throw new UsageException($"--golden {golden}: no such folder (the fixtures are in ../shared/golden).");
        using var device = Device.Open(a.String("device", "auto"));
        PrintHeader(device, output);
        var results = new List<CheckResult>();
        void Print(CheckResult r)
        {
            results.Add(r);
            PrintRow(r, output);
        }
        output.WriteLine($"{"check",-44} {"max rel err",12} {"tolerance",10}  result");
        ConformanceRunner.RunOps(device, opsFor?.Invoke(device), Print);
        if (!(a.Bool("ops-only") ?? false))
        {
            if (golden is not null)
            {
                foreach (var r in ModelChecks.Golden(device, golden))
                    Print(r);
            }
            else
            {
                var refName = a.String("reference") ?? (device.Kind == BackendKind.IlgpuCpu ? "cpu" : "ilgpu-cpu");
                using var reference = Device.Open(refName);
                foreach (var r in ModelChecks.CrossDevice(device, reference))
                    Print(r);
            }
        }
        var failed = results.Count(r => !r.Passed);
        output.WriteLine();
        output.WriteLine(failed == 0
            ? $"All {results.Count} checks passed on {device.Name}."
            : $"{failed} of {results.Count} checks FAILED on {device.Name}: this device computes wrong results; do not train on it.");
        return failed == 0 ? 0 : 1;
    }

    static void PrintHeader(Device device, TextWriter output)
    {
        var info = Device.List().FirstOrDefault(d => d.Name == device.Name);
        output.WriteLine($"device     {device.Name}: {device.Description}");
        output.WriteLine($"back end   {device.Kind}");
        output.WriteLine($"driver     {info?.Details ?? "unknown"}");
        output.WriteLine($"ILGPU      {Device.IlgpuVersion}, .NET {Environment.Version}, {Environment.OSVersion}");
        output.WriteLine();
    }

    static void PrintRow(CheckResult r, TextWriter output)
    {
        var err = double.IsNaN(r.Error) ? "error" : r.Error.ToString("0.0e+00", CultureInfo.InvariantCulture);
        var tol = r.Tolerance.ToString("0.0e+00", CultureInfo.InvariantCulture);
        output.WriteLine($"{r.Name,-44} {err,12} {tol,10}  {(r.Passed ? "pass" : "FAIL")}{(r.Note is null ? "" : "   " + r.Note)}");
    }
}
