// `sdd doctor`: device conformance. Runs every op's forward and backward against a float64 reference, then
// whole-model steps against golden fixtures or a second device, and prints one table; exit 1 on any failure.
using System.CommandLine;
using System.Globalization;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;
using SddIlgpu.Training.Conformance;
using static SddIlgpu.Cli.CliOptions;

namespace SddIlgpu.Cli;

public static class DoctorCommand
{
    /// <summary>With <paramref name="opsFor"/>, the op checks run through that op set (tests inject a broken op).</summary>
    public static Command Create(TextWriter? output = null, Func<Device, OpSet>? opsFor = null)
    {
        var device = CliOptions.DeviceOption();
        var golden = Text("--golden", "folder of golden *.safetensors fixtures (../shared/golden): compare model steps with them", "DIR");
        var reference = Text("--reference", "without --golden, the device the model steps are compared with (default: ilgpu-cpu, or cpu when --device is ilgpu-cpu)", "D");
        reference.CompletionSources.Add("cpu", "ilgpu-cpu", "cuda", "opencl");
        var opsOnly = Switch("--ops-only", "skip the whole-model checks");
        var command = new Command("doctor", "check that a device computes every op and model step correctly") { device, golden, reference, opsOnly };
        command.Validators.Add(c =>
        {
            if (c.GetResult(golden) is not null && c.GetResult(reference) is not null)
                c.AddError("--golden and --reference choose what the model steps are compared with: give one, not both.");
            else if (c.GetValue(opsOnly) && (c.GetResult(golden) ?? c.GetResult(reference)) is { } r)
                c.AddError($"{((System.CommandLine.Parsing.OptionResult)r).Option.Name} has no effect with --ops-only (which skips the model checks): drop one of them.");
        });
        command.SetAction(p => Run(p.GetValue(device)!, p.GetValue(golden), p.GetValue(reference), p.GetValue(opsOnly), output ?? Console.Out, opsFor));
        return command;
    }

    /// <summary>Parses and runs <c>sdd doctor ARGS</c>, writing to <paramref name="output"/>; a usage mistake throws <see cref="UsageException"/>.</summary>
    internal static int Run(IReadOnlyList<string> argv, TextWriter output, Func<Device, OpSet>? opsFor) =>
        Program.Invoke(Create(output, opsFor), argv);

    static int Run(string deviceName, string? golden, string? referenceName, bool opsOnly, TextWriter output, Func<Device, OpSet>? opsFor)
    {
        if (golden is not null && !Directory.Exists(golden))
            throw new UsageException($"--golden {golden}: no such folder (the fixtures are in ../shared/golden).");
        using var device = Device.Open(deviceName);
        PrintHeader(device, output);
        var results = new List<CheckResult>();
        void Print(CheckResult r)
        {
            results.Add(r);
            PrintRow(r, output);
        }
        output.WriteLine($"{"check",-44} {"max rel err",12} {"tolerance",10}  result");
        ConformanceRunner.RunOps(device, opsFor?.Invoke(device), Print);
        if (!opsOnly)
        {
            if (golden is not null)
            {
                foreach (var r in ModelChecks.Golden(device, golden))
                    Print(r);
            }
            else
            {
                using var reference = Device.Open(referenceName ?? (device.Kind == BackendKind.IlgpuCpu ? "cpu" : "ilgpu-cpu"));
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
