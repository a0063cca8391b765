// A small, strict flag parser: `--name value` or `--name=value`, booleans as `--name` / `--name=false`.
// Every command declares its flags; anything else is rejected with the command's usage text.
using System.Globalization;

namespace SddIlgpu.Cli;

/// <summary>A command-line mistake: printed with the command's usage, exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>One declared flag.</summary>
public sealed record Flag(string Name, string Help, bool IsBool = false, string? Default = null)
{
    /// <summary>The --device flag every command that computes takes.</summary>
    public static Flag Device(string defaultName = "auto") =>
        new("device", "auto, cuda, cuda:N, opencl, opencl:N, cpu, ilgpu-cpu", Default: defaultName);
}

/// <summary>The parsed flags of one command.</summary>
public sealed class CliArgs
{
    readonly Dictionary<string, string> values = [];

    CliArgs(List<string> positional) => Positional = positional;

    public IReadOnlyList<string> Positional { get; }

    public static CliArgs Parse(IReadOnlyList<string> args, IReadOnlyList<Flag> flags, int maxPositional = 0)
    {
        var known = flags.ToDictionary(f => f.Name);
        var positional = new List<string>();
        var parsed = new CliArgs(positional);
        for (var i = 0; i < args.Count; i++)
        {
            var a = args[i];
            if (!a.StartsWith("--", StringComparison.Ordinal))
            {
                if (positional.Count >= maxPositional)
                    throw new UsageException($"Unexpected argument '{a}'.");
                positional.Add(a);
                continue;
            }
            var eq = a.IndexOf('=', StringComparison.Ordinal);
            var name = eq > 0 ? a[2..eq] : a[2..];
            if (!known.TryGetValue(name, out var flag))
                throw new UsageException($"Unknown flag '--{name}'.");
            string value;
            if (eq > 0)
                value = a[(eq + 1)..];
            else if (flag.IsBool)
                value = "true";
            else if (i + 1 < args.Count)
                value = args[++i];
            else
                throw new UsageException($"Flag '--{name}' needs a value.");
            if (parsed.values.ContainsKey(name))
                throw new UsageException($"Flag '--{name}' is given twice.");
            parsed.values[name] = value;
        }
        return parsed;
    }

    public bool Has(string name) => values.ContainsKey(name);

    public string? String(string name) => values.GetValueOrDefault(name);

    public string String(string name, string fallback) => values.GetValueOrDefault(name) ?? fallback;

    public int? Int(string name) => values.TryGetValue(name, out var v) ? ParseInt(name, v) : null;

    public int Int(string name, int fallback) => Int(name) ?? fallback;

    public double? Double(string name) => values.TryGetValue(name, out var v) ? ParseDouble(name, v) : null;

    public ulong? ULong(string name) =>
        values.TryGetValue(name, out var v)
            ? ulong.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var x) ? x
                : throw new UsageException($"--{name} needs a non-negative whole number; got '{v}'.")
            : null;

    public bool? Bool(string name) =>
        values.TryGetValue(name, out var v)
            ? v.ToLowerInvariant() switch
            {
                "true" or "1" or "yes" => true,
                "false" or "0" or "no" => false,
                _ => throw new UsageException($"--{name} is true or false; got '{v}'."),
            }
            : null;

    static int ParseInt(string name, string v) =>
        int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var x) ? x
            : throw new UsageException($"--{name} needs a whole number; got '{v}'.");

    static double ParseDouble(string name, string v) =>
        double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var x) ? x
            : throw new UsageException($"--{name} needs a number; got '{v}'.");

    /// <summary>Usage text: the command line and one line per flag.</summary>
    public static string Usage(string command, string synopsis, IReadOnlyList<Flag> flags)
    {
        var width = flags.Count == 0 ? 0 : flags.Max(f => f.Name.Length + (f.IsBool ? 0 : 6)) + 4;
        var lines = new List<string> { $"usage: sdd {command} {synopsis}", "" };
        foreach (var f in flags)
        {
            var left = f.IsBool ? $"--{f.Name}" : $"--{f.Name} VALUE";
            lines.Add($"  {left.PadRight(width)}{f.Help}{(f.Default is null ? "" : $" (default {f.Default})")}");
        }
        return string.Join(Environment.NewLine, lines);
    }
}
