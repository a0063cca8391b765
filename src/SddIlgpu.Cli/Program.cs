// The sdd command-line tool: train, sample, eval, plot, devices, doctor, bench, experiment.
// Bad input exits non-zero with a message that names the problem and the fix.
using SddIlgpu.Tensors;
using SddIlgpu.Training.Checkpoints;
using SddIlgpu.Training.Data;

namespace SddIlgpu.Cli;

public static class Program
{
    static readonly (string Name, string Help)[] Commands =
    [
        ("train", "train a model (default: the tiny preset on the built-in corpus)"),
        ("sample", "generate text from a checkpoint"),
        ("eval", "validation loss of a checkpoint on a text file"),
        ("plot", "write the loss plot of a run folder"),
        ("devices", "list compute devices"),
        ("doctor", "check that a device computes every op and model step correctly"),
        ("bench", "GEMM, attention, norm and training-step speed of a device"),
        ("experiment", "reproduce the SDD paper's claims at small scale (tables and plots)"),
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
        catch (Exception e) when (e is DeviceNotFoundException or DataException or CheckpointException or ArgumentException
                                       or IOException or UnauthorizedAccessException or InvalidDataException)
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
            "train" => TrainCommand.Run(rest),
            "sample" => SampleCommands.Sample(rest),
            "eval" => SampleCommands.Eval(rest),
            "plot" => SampleCommands.Plot(rest),
            "devices" => DevicesCommand.Run(rest),
            "doctor" => DoctorCommand.Run(rest),
            "bench" => BenchCommand.Run(rest),
            "experiment" => ExperimentCommand.Run(rest),
            _ => throw new UsageException($"Unknown command '{args[0]}'."),
        };
    }

    static string GeneralUsage() =>
        "usage: sdd COMMAND [flags]   (sdd COMMAND --help for its flags)\n\n" +
        string.Join("\n", Commands.Select(c => $"  {c.Name,-11}{c.Help}"));

    static string UsageFor(string command) => command switch
    {
        "train" => CliArgs.Usage("train", TrainCommand.Synopsis, TrainCommand.Flags),
        "sample" => CliArgs.Usage("sample", "CHECKPOINT [--prompt TEXT] [--tokens N]", SampleCommands.SampleFlags),
        "eval" => CliArgs.Usage("eval", "CHECKPOINT [--data FILE]", SampleCommands.EvalFlags),
        "plot" => CliArgs.Usage("plot", "RUN_DIR|LOG.jsonl [--out FILE.png]", SampleCommands.PlotFlags),
        "devices" => CliArgs.Usage("devices", "", DevicesCommand.Flags),
        "doctor" => CliArgs.Usage("doctor", DoctorCommand.Synopsis, DoctorCommand.Flags),
        "bench" => CliArgs.Usage("bench", BenchCommand.Synopsis, BenchCommand.Flags),
        "experiment" => ExperimentCommand.Usage(),
        _ => GeneralUsage(),
    };
}
