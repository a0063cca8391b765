// Typed System.CommandLine options shared by every command, with the validation rules in one place: a value
// outside its range is a parse error naming the flag, the rule and the value (exit 2, before any work starts).
using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace SddIlgpu.Cli;

/// <summary>A command-line mistake found by a command after parsing: printed with the command's usage, exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>Factories and validators for the options of the sdd commands.</summary>
internal static class CliOptions
{
    /// <summary>The device names offered for completion (cuda:N and opencl:N are accepted too).</summary>
    static readonly string[] DeviceNames = ["auto", "cuda", "opencl", "cpu", "ilgpu-cpu"];

    /// <summary>The --device option every command that computes takes; the name is checked when the device opens (exit 1).</summary>
    public static Option<string> DeviceOption(string defaultName = "auto")
    {
        var o = new Option<string>("--device")
        {
            Description = "compute device: auto (CUDA, then a usable OpenCL device, then cpu), cuda, cuda:N, opencl, opencl:N, cpu, ilgpu-cpu",
            HelpName = "D",
            DefaultValueFactory = _ => defaultName,
        };
        o.CompletionSources.Add(DeviceNames);
        return o;
    }

    /// <summary>An option with a fixed default shown in help.</summary>
    public static Option<T> With<T>(string name, string description, T defaultValue, string helpName = "X") => new(name)
    {
        Description = description,
        HelpName = helpName,
        DefaultValueFactory = _ => defaultValue,
    };

    /// <summary>An option without a default: absent means "not given" (null).</summary>
    public static Option<T?> Optional<T>(string name, string description, string helpName = "X") where T : struct => new(name)
    {
        Description = description,
        HelpName = helpName,
    };

    /// <summary>A string option without a default.</summary>
    public static Option<string?> Text(string name, string description, string helpName) => new(name)
    {
        Description = description,
        HelpName = helpName,
    };

    /// <summary>A string option restricted to <paramref name="choices"/> (listed in help and offered for completion).</summary>
    public static Option<string> Choice(string name, string description, string defaultValue, IReadOnlyList<string> choices)
    {
        var o = new Option<string>(name) { Description = description, HelpName = string.Join("|", choices), DefaultValueFactory = _ => defaultValue };
        o.CompletionSources.Add([.. choices]);
        return o.Must(choices.Contains, $"must be one of {string.Join(", ", choices)}");
    }

    /// <summary>An on/off switch: <c>--quiet</c>, or <c>--quiet true|false</c>.</summary>
    public static Option<bool> Switch(string name, string description, bool defaultValue = false) => new(name)
    {
        Description = description,
        DefaultValueFactory = _ => defaultValue,
    };

    /// <summary>Adds a rule: a given value for which <paramref name="ok"/> is false is a parse error "--name RULE; got V.".</summary>
    public static Option<T> Must<T>(this Option<T> o, Func<T, bool> ok, string rule)
    {
        o.Validators.Add(r =>
        {
            var v = r.GetValueOrDefault<T>();
            if (v is not null && !ok(v))
                r.AddError($"{o.Name} {rule}; got {Format(v)}.");
        });
        return o;
    }

    /// <summary>The nullable form of Must: the rule applies when the option is given.</summary>
    public static Option<T?> MustIfGiven<T>(this Option<T?> o, Func<T, bool> ok, string rule) where T : struct
    {
        o.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<T?>() is T v && !ok(v))
                r.AddError($"{o.Name} {rule}; got {Format(v)}.");
        });
        return o;
    }

    public static Option<int> AtLeast(this Option<int> o, int min) => o.Must(v => v >= min, $"must be at least {min}");

    public static Option<int?> AtLeast(this Option<int?> o, int min) => o.MustIfGiven(v => v >= min, $"must be at least {min}");

    public static Option<double> Positive(this Option<double> o) => o.Must(v => v > 0 && double.IsFinite(v), "must be a positive finite number");

    public static Option<double?> Positive(this Option<double?> o) => o.MustIfGiven(v => v > 0 && double.IsFinite(v), "must be a positive finite number");

    public static Option<double> NonNegative(this Option<double> o, string zeroMeans) =>
        o.Must(v => v >= 0 && double.IsFinite(v), $"must be zero ({zeroMeans}) or a positive finite number");

    public static Option<double> InRange(this Option<double> o, double min, double max, bool maxIncluded) =>
        o.Must(v => v >= min && (maxIncluded ? v <= max : v < max), $"must be in [{Format(min)}, {Format(max)}{(maxIncluded ? "]" : ")")}");

    /// <summary>--temperature: 0 is greedy (the most likely token), otherwise the softmax temperature.</summary>
    public static Option<double> Temperature(double defaultValue) =>
        With("--temperature", "sampling temperature; 0 is greedy (always the most likely token, the same as --top-k 1)", defaultValue)
            .NonNegative("greedy");

    /// <summary>--top-k: 0 is off (every token), otherwise the k most likely tokens.</summary>
    public static Option<int> TopK(int defaultValue) =>
        With("--top-k", "sample from the k most likely tokens; 0 is off (every token)", defaultValue, "K")
            .Must(v => v >= 0, "must be zero (off) or positive");

    /// <summary>True when the user typed the option (not just its default).</summary>
    public static bool Given(this ParseResult p, Option o) => p.GetResult(o) is { Implicit: false };

    public static string Format<T>(T value) => value switch
    {
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        IFormattable x => x.ToString(null, CultureInfo.InvariantCulture),
        _ => value?.ToString() ?? "",
    };
}
