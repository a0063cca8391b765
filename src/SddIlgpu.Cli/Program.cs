// The sdd command-line tool: train, sample, eval, plot, devices, doctor, bench, experiment.
// Bad input exits non-zero with a message that names the problem and the fix.
using SddIlgpu.Tensors;

namespace SddIlgpu.Cli;

public static class Program
{
    static readonly (string Name, string Help)[] Commands =
    [
        ("doctor", "check that a device computes every op and model step correctly"),
        ("bench", "GEMM, attention, norm and training-step speed of a device"),
    ];

    public static int Main(string[] args)
    {
        try
        {
            return Dispatch(args);
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"sdd: {e.Message}");
            Console.Error.WriteLine();
            Console.Error.WriteLine(UsageFor(args.Length > 0 ? args[0] : ""));
            return 2;
        }
        catch (Exception e) when (e is DeviceNotFoundException or ArgumentException or IOException or UnauthorizedAccessException or InvalidDataException)
        {
            Console.Error.WriteLine($"sdd: {e.Message}");
            return 1;
        }
    }

    static int Dispatch(string[] args)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            Console.WriteLine(GeneralUsage());
            return args.Length == 0 ? 2 : 0;
        }
        var rest = args[1..];
        if (rest.Contains("--help") || rest.Contains("-h"))
        {
            Console.WriteLine(UsageFor(args[0]));
            return 0;
        }
        return args[0] switch
        {
            "doctor" => DoctorCommand.Run(rest),
            "bench" => BenchCommand.Run(rest),
            _ => throw new UsageException($"Unknown command '{args[0]}'."),
        };
    }

    static string GeneralUsage() =>
        "usage: sdd COMMAND [flags]   (sdd COMMAND --help for its flags)\n\n" +
        string.Join("\n", Commands.Select(c => $"  {c.Name,-11}{c.Help}"));

    static string UsageFor(string command) => command switch
    {
        "doctor" => CliArgs.Usage("doctor", DoctorCommand.Synopsis, DoctorCommand.Flags),
        "bench" => CliArgs.Usage("bench", BenchCommand.Synopsis, BenchCommand.Flags),
        _ => GeneralUsage(),
    };
}
