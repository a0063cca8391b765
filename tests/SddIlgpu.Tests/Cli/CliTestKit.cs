// Helpers of the command-line tests: a small corpus, a run's log without its timings, the options a command declares.
using System.CommandLine;
using System.Text.Json.Nodes;
using NUnit.Framework;

namespace SddIlgpu.Tests.Cli;

public static class CliTestKit
{
    /// <summary>About 8 KB of varied English-like text: long enough for T = 8 windows in both splits, quick to encode.</summary>
    public static string Corpus(int seed)
    {
        string[] words = ["the", "fox", "ran", "over", "a", "lazy", "dog", "while", "birds", "sang", "in", "green", "trees", "and", "rain", "fell"];
        var rng = new Random(seed);
        var lines = Enumerable.Range(0, 200).Select(_ => string.Join(" ", Enumerable.Range(0, 7).Select(_ => words[rng.Next(words.Length)])) + ".");
        return string.Join("\n", lines) + "\n";
    }

    /// <summary>Everything a run logged (losses, validation losses, lr, gradient norms, samples) except wall-clock timings.</summary>
    public static string LogWithoutTimings(string runDir)
    {
        var lines = File.ReadAllLines(Path.Combine(runDir, "log.jsonl")).Select(l =>
        {
            var o = JsonNode.Parse(l)!.AsObject();
            o.Remove("tokens_per_s");
            o.Remove("elapsed_s");
            return o.ToJsonString();
        });
        return string.Join("\n", lines);
    }

    /// <summary>The long names of a command's options (without --help).</summary>
    public static string[] OptionNames(Command command) =>
        [.. command.Options.Select(o => o.Name).Where(n => n is not ("--help" or "-h" or "-?"))];

    /// <summary>No stack trace reached the user.</summary>
    public static void NoStackTrace((int Code, string Out, string Err) r) =>
        Assert.That(r.Out + r.Err, Does.Not.Contain("   at ").And.Not.Contain("Exception:"), "a stack trace was printed");
}
