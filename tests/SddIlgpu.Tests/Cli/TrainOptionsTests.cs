// `sdd train`: every option it accepts is honoured. Each case changes one option from a small baseline run and
// asserts what it changes (the logged losses, lr, gradient norms and samples, or an observable file or line), and
// a guard fails when an option is added without such a case (the kind "accepted but ignored").
using NUnit.Framework;
using SddIlgpu.Cli;
using SddIlgpu.Training.Checkpoints;

namespace SddIlgpu.Tests.Cli;

[TestFixture]
public sealed class TrainOptionsTests
{
    string dir = null!, data = null!, otherData = null!, cache = null!, baseline = null!;
    int runs;

    /// <summary>4 steps of a one-block C = 16 model on 8 KB of text, evaluating and sampling every 2 steps; <paramref name="extra"/> replaces or adds options.</summary>
    string[] Base(string outDir, params string[] extra)
    {
        var options = new List<(string Name, string? Value)>
        {
            ("--device", "cpu"), ("--data", data), ("--cache-dir", cache), ("--out", outDir),
            ("--d-model", "16"), ("--n-layer", "1"), ("--n-head", "2"), ("--seq-len", "8"), ("--batch", "2"), ("--steps", "4"), ("--warmup", "2"),
            ("--eval-every", "2"), ("--eval-batches", "2"), ("--sample-every", "2"), ("--sample-tokens", "8"),
        };
        for (var i = 0; i < extra.Length; i++)
        {
            var value = i + 1 < extra.Length && !extra[i + 1].StartsWith("--", StringComparison.Ordinal) ? extra[++i] : null;
            var name = value is null ? extra[i] : extra[i - 1];
            options.RemoveAll(o => o.Name == name);
            options.Add((name, value));
        }
        return ["train", .. options.SelectMany(o => o.Value is null ? new[] { o.Name } : [o.Name, o.Value])];
    }

    [OneTimeSetUp]
    public void Baseline()
    {
        dir = Directory.CreateTempSubdirectory("sdd-train-opts-").FullName;
        data = Path.Combine(dir, "a.txt");
        otherData = Path.Combine(dir, "b.txt");
        cache = Path.Combine(dir, "cache");
        File.WriteAllText(data, CliTestKit.Corpus(1));
        File.WriteAllText(otherData, CliTestKit.Corpus(2));
        baseline = Train([]).Log;
    }

    [OneTimeTearDown]
    public void RemoveDir() => Directory.Delete(dir, recursive: true);

    (string Log, string Out, string RunDir) Train(string[] extra, bool quiet = true)
    {
        var runDir = Path.Combine(dir, $"run{runs++}");
        var r = CliRunner.Run(Base(runDir, [.. quiet ? ["--quiet"] : Array.Empty<string>(), .. extra]));
        CliTestKit.NoStackTrace(r);
        Assert.That(r.Code, Is.Zero, $"sdd train {string.Join(" ", extra)}: {r.Err}");
        return (CliTestKit.LogWithoutTimings(runDir), r.Out, runDir);
    }

    /// <summary>Options whose effect shows in the training log: one changed value each.</summary>
    static readonly string[][] ChangesTheLog =
    [
        ["--preset", "shakespeare-cpu"], // its lr (1e-3) replaces tiny's (2e-3)
        ["--data", "OTHER"],
        ["--tokenizer", "byte"],
        ["--stop-at", "3"],
        ["--residual", "pre"],
        ["--linear", "plain"],
        ["--d-model", "32"],
        ["--n-layer", "2"],
        ["--n-head", "4"],
        ["--n-kv-head", "1"],
        ["--ffn-hidden", "16"],
        ["--seq-len", "6"],
        ["--norm-eps", "0.01"],
        ["--rope-theta", "100"],
        ["--init-std", "0.3"],
        ["--steps", "5"],
        ["--batch", "3"],
        ["--grad-accum", "2"],
        ["--lr", "0.01"],
        ["--min-lr-ratio", "0.5"],
        ["--warmup", "0"],
        ["--weight-decay", "0"],
        ["--beta1", "0.5"],
        ["--beta2", "0.5"],
        ["--adam-eps", "0.001"],
        ["--grad-clip", "0.01"],
        ["--decay-norm-gains", "false"],
        ["--seed", "7"],
        ["--eval-every", "1"],
        ["--eval-batches", "3"],
        ["--sample-every", "1"],
        ["--sample-tokens", "12"],
        ["--temperature", "0"],
        ["--top-k", "1"],
        ["--log-every", "2"],
    ];

    /// <summary>Options observed otherwise (each has its own test below).</summary>
    static readonly string[] ObservedOtherwise = ["--out", "--resume", "--device", "--cache-dir", "--quiet", "--checkpoint-every",
        "--dry-run", "--overwrite"]; // these two: RunSafetyCliTests

    [TestCaseSource(nameof(ChangesTheLog))]
    public void TheOptionChangesTheRun(string option, string value)
    {
        var (log, _, _) = Train([option, value == "OTHER" ? otherData : value]);
        Assert.That(log, Is.Not.EqualTo(baseline), $"{option} {value} was accepted but changed nothing");
    }

    [Test]
    public void EveryOptionOfTrainHasACase()
    {
        var covered = ChangesTheLog.Select(c => c[0]).Concat(ObservedOtherwise).ToHashSet();
        Assert.That(CliTestKit.OptionNames(TrainCommand.Create()).Where(n => !covered.Contains(n)), Is.Empty,
            "an option of sdd train has no test that it is honoured");
    }

    [Test]
    public void TheSameOptionsGiveTheSameRun() => Assert.That(Train([]).Log, Is.EqualTo(baseline));

    [Test]
    public void OutIsWhereTheRunIsWritten()
    {
        var (_, output, runDir) = Train([]);
        Assert.That(Directory.GetFiles(runDir).Select(Path.GetFileName), Is.SupersetOf(new[] { "checkpoint.safetensors", "log.jsonl", "loss.png" }));
        Assert.That(output, Does.Contain(Path.Combine(runDir, "checkpoint.safetensors")));
    }

    [Test]
    public void QuietPrintsOnlyTheSummaryAndDevicePicksTheDevice()
    {
        var (_, loud, _) = Train([], quiet: false);
        Assert.That(loud, Does.Contain("device     cpu").And.Contain("step      4/4").And.Contain("--- sample ---"));
        var (_, quiet, _) = Train([]);
        Assert.That(quiet, Does.Not.Contain("step      4/4").And.Not.Contain("device     cpu").And.Contain("Done: 4 steps"));
        var r = CliRunner.Run(Base(Path.Combine(dir, "tpu"), "--device", "tpu"));
        Assert.That(r.Code, Is.EqualTo(1));
        Assert.That(r.Err, Does.Contain("Unknown device 'tpu'"), "--device is read, not ignored");
    }

    [Test]
    public void CacheDirHoldsTheEncodedCorpus()
    {
        var own = Path.Combine(dir, "own-cache");
        var runDir = Path.Combine(dir, "cached");
        var r = CliRunner.Run(Base(runDir, "--quiet", "--cache-dir", own));
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(Directory.Exists(own) && Directory.EnumerateFiles(own, "*", SearchOption.AllDirectories).Any(), "nothing cached in --cache-dir");
    }

    [Test]
    public void CheckpointEverySavesDuringTheRun()
    {
        // A run that diverges at once keeps no final checkpoint; with --checkpoint-every 1 the last good step is on disk.
        string[] diverge = ["--lr", "1e6", "--grad-clip", "0", "--warmup", "0", "--steps", "50", "--eval-every", "0", "--sample-every", "1000"];
        var without = Path.Combine(dir, "diverge-plain");
        var r = CliRunner.Run(Base(without, ["--quiet", .. diverge]));
        Assert.That(r.Code, Is.EqualTo(3), "the run diverges: " + r.Out + r.Err);
        var divergedAt = int.Parse(System.Text.RegularExpressions.Regex.Match(r.Out, @"Diverged at step (\d+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.That(divergedAt, Is.GreaterThan(1), "diverges after a good step");
        Assert.That(File.Exists(Path.Combine(without, "checkpoint.safetensors")), Is.False);

        var with = Path.Combine(dir, "diverge-every");
        Assert.That(CliRunner.Run(Base(with, [.. diverge, "--quiet", "--checkpoint-every", "1"])).Code, Is.EqualTo(3));
        Assert.That(Checkpoint.ReadState(Path.Combine(with, "checkpoint.safetensors")).Step, Is.EqualTo(divergedAt - 1));
    }

    [Test]
    public void ResumeTakesTheRunFolderOrTheCheckpointAndContinuesExactly()
    {
        var (full, _, _) = Train(["--steps", "6"]);
        var (_, _, stopped) = Train(["--steps", "6", "--stop-at", "2"]);
        var copy = Path.Combine(dir, "stopped-copy");
        Directory.CreateDirectory(copy);
        foreach (var f in Directory.GetFiles(stopped))
            File.Copy(f, Path.Combine(copy, Path.GetFileName(f)));

        var byFolder = CliRunner.Run("train", "--resume", stopped, "--device", "cpu", "--quiet", "--cache-dir", cache);
        Assert.That(byFolder.Code, Is.Zero, byFolder.Err);
        Assert.That(byFolder.Out, Does.Contain("Done: 6 steps"));
        Assert.That(CliTestKit.LogWithoutTimings(stopped), Is.EqualTo(full), "resumed from the folder = uninterrupted");

        var byFile = CliRunner.Run("train", "--resume", Path.Combine(copy, "checkpoint.safetensors"), "--device", "cpu", "--quiet", "--cache-dir", cache);
        Assert.That(byFile.Code, Is.Zero, byFile.Err);
        Assert.That(CliTestKit.LogWithoutTimings(copy), Is.EqualTo(full), "resumed from the file = uninterrupted");
    }
}
