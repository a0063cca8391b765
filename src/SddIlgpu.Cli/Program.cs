// The sdd command-line tool: train, sample, eval, plot, devices, doctor, bench, experiment, on System.CommandLine.
// Exit codes: 0 success; 1 bad data, file, checkpoint or device (one line "sdd: ..."); 2 a usage mistake (one line
// naming it, then the usage); 3 a diverged training run. Never a stack trace for bad input.
using System.CommandLine;
using System.CommandLine.Invocation;
using SddIlgpu.Tensors;
using SddIlgpu.Training.Checkpoints;
using SddIlgpu.Training.Data;

namespace SddIlgpu.Cli;

public static class Program
{
    /// <summary>The commands in help order. Adding a command: a class whose <c>Create()</c> returns its Command, and one entry here.</summary>
    static Command[] Commands() =>
    [
        TrainCommand.Create(),
        PrepareCommand.Create(),
        SampleCommands.CreateSample(),
        SampleCommands.CreateEval(),
        SampleCommands.CreatePlot(),
        DevicesCommand.Create(),
        DoctorCommand.Create(),
        BenchCommand.Create(),
        ExperimentCommand.Create(),
    ];

    /// <summary>The whole command tree (also what shell completion reads through the [suggest] directive).</summary>
    public static RootCommand Root()
    {
        var root = new RootCommand("sdd: train small transformer language models with Scale-Distribution Decoupling (SDD) on any GPU or the CPU.");
        foreach (var c in Commands())
            root.Add(c);
        return root;
    }

    public static int Main(string[] args)
    {
        if (args is ["help", .. var rest])
            args = [.. rest, "--help"];
        ParseResult? parsed = null;
        try
        {
            parsed = Root().Parse(args);
            if (parsed.Action is ParseErrorAction)
            {
                if (args.Length == 0)
                {
                    Root().Parse(["--help"]).Invoke();
                    return 2;
                }
                return UsageError(parsed, FirstError(parsed));
            }
            return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (UsageException e) when (parsed is not null)
        {
            return UsageError(parsed, e.Message);
        }
        catch (Exception e) when (e is DeviceNotFoundException or DataException or CheckpointException or ArgumentException
                                       or IOException or UnauthorizedAccessException or InvalidDataException)
        {
            Console.Error.WriteLine($"sdd: {e.Message}");
            return 1;
        }
    }

    /// <summary>
    /// Parses <paramref name="argv"/> against one command alone and runs it: the entry point of tests that call a command
    /// directly. A parse error throws <see cref="UsageException"/>.
    /// </summary>
    internal static int Invoke(Command command, IReadOnlyList<string> argv)
    {
        var parsed = command.Parse(argv);
        if (parsed.Action is ParseErrorAction)
            throw new UsageException(FirstError(parsed));
        return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
    }

    static int UsageError(ParseResult parsed, string message)
    {
        var command = parsed.CommandResult.Command;
        var path = new List<string>();
        for (var r = parsed.CommandResult; r is not null; r = r.Parent as System.CommandLine.Parsing.CommandResult)
            path.Insert(0, r.Command is RootCommand ? "sdd" : r.Command.Name);
        var usage = string.Join(" ", path)
                    + string.Concat(command.Arguments.Select(a => $" {a.Name}"))
                    + (command.Subcommands.Count > 0 ? " COMMAND" : "")
                    + (command.Options.Count > 0 ? " [options]" : "");
        Console.Error.WriteLine($"sdd: {message}");
        Console.Error.WriteLine();
        Console.Error.WriteLine($"usage: {usage}");
        if (command.Subcommands.Count > 0)
            foreach (var c in command.Subcommands)
                Console.Error.WriteLine($"  {c.Name,-16}{c.Description}");
        Console.Error.WriteLine($"({string.Join(" ", path)} --help lists every option and its default)");
        return 2;
    }

    /// <summary>One line for the first mistake: an unknown token is named as an unknown flag, command or argument.</summary>
    static string FirstError(ParseResult parsed)
    {
        if (parsed.UnmatchedTokens.Count > 0)
        {
            var token = parsed.UnmatchedTokens[0];
            var command = parsed.CommandResult.Command;
            if (token.StartsWith('-'))
            {
                var near = command.Options.Select(o => o.Name).Where(n => n.StartsWith("--", StringComparison.Ordinal))
                    .OrderBy(n => EditDistance(n, token.Split('=')[0])).FirstOrDefault();
                var hint = near is not null && EditDistance(near, token.Split('=')[0]) <= 2 ? $" Did you mean {near}?" : "";
                return $"Unknown flag '{token}'.{hint}";
            }
            return command.Subcommands.Count > 0
                ? $"Unknown command '{token}'. Commands: {string.Join(", ", command.Subcommands.Select(c => c.Name))}."
                : $"Unexpected argument '{token}'.";
        }
        if (parsed.Errors.Count == 0)
            return "Incomplete command.";
        var first = string.Join(" ", parsed.Errors[0].Message.Split(['\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        if (first.StartsWith("Required argument missing", StringComparison.Ordinal) && parsed.CommandResult.Command.Arguments.FirstOrDefault() is { } argument)
            return $"Missing {argument.Name}: give {argument.Description}.";
        return first == "Required command was not provided."
            ? $"Name a command: {string.Join(", ", parsed.CommandResult.Command.Subcommands.Select(c => c.Name))}."
            : first;
    }

    static int EditDistance(string a, string b)
    {
        var d = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
            d[j] = j;
        for (var i = 1; i <= a.Length; i++)
        {
            var prev = d[0];
            d[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var temp = d[j];
                d[j] = Math.Min(Math.Min(d[j] + 1, d[j - 1] + 1), prev + (a[i - 1] == b[j - 1] ? 0 : 1));
                prev = temp;
            }
        }
        return d[b.Length];
    }
}
