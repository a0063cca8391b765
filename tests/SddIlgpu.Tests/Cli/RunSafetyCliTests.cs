// Issue 10 §4 and §5 through the real tool: impossible sizes exit 1 at once with nothing created; Ctrl+C and
// SIGTERM checkpoint and print the resume command; one run per folder; a diverged run names only real files.
using System.Diagnostics;
using NUnit.Framework;
using SddIlgpu.Layers;
using SddIlgpu.Tensors.Ops;
using SddIlgpu.Training;
using SddIlgpu.Training.Checkpoints;
using SddIlgpu.Training.Metrics;

namespace SddIlgpu.Tests.Cli;

[NonParallelizable]
public sealed class RunSafetyCliTests
{
    static readonly TimeSpan Patience = TimeSpan.FromMinutes(3); // a loaded 2-core machine starts dotnet slowly

    string dir = null!;

    [SetUp]
    public void MakeDir() => dir = Directory.CreateTempSubdirectory("sdd-safety-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(dir, recursive: true);

    static readonly string[] Small = ["--device", "cpu", "--d-model", "16", "--n-layer", "1", "--n-head", "2", "--seq-len", "8", "--batch", "2"];

    /// <summary>Small, plus no sampling and one validation batch: a short run that costs little.</summary>
    static readonly string[] Quick = [.. Small, "--sample-every", "0", "--eval-batches", "1"];

    /// <summary>A run that would go on for hours and prints a progress line every step (--eval-every 1).</summary>
    string[] LongRun(string outDir) => ["train", .. Small, "--steps", "1000000", "--eval-every", "1", "--eval-batches", "1", "--out", outDir];

    static bool IsProgress(string line) => line.StartsWith("step ", StringComparison.Ordinal);

    // ---------------------------------------------------------------- §4 impossible sizes

    [TestCase("--d-model", "100000")]
    [TestCase("--n-layer", "10000")]
    [TestCase("--batch", "1000000")]
    [TestCase("--n-layer", "2000000000")] // own case: a count past 32 bits (7·L linear weights) is refused, not wrapped
    // own case: the kernels' materialised (B, NH, T, T) attention probabilities past one tensor's limit (the cpu
    // device's fused attention saves only (B, NH, T), so there this length is merely slow, not impossible)
    [TestCase("--seq-len", "30000", "ilgpu-cpu")]
    public void AnImpossibleSizeExitsOneAtOnceCreatingNothing(string flag, string value, string device = "cpu")
    {
        var outDir = Path.Combine(dir, "run");
        var clock = Stopwatch.StartNew();
        var r = CliRunner.Run("train", "--device", device, flag, value, "--out", outDir);
        Assert.That(clock.Elapsed.TotalSeconds, Is.LessThan(60), "refused before anything is allocated");
        Assert.That(r.Code, Is.EqualTo(1), r.Err);
        var lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(1), r.Err);
        Assert.That(lines[0], Does.StartWith("sdd: This run").And.Contain("--batch"));
        Assert.That(Directory.Exists(outDir), Is.False, "nothing created");
    }

    [Test]
    public void TheDeviceMemoryTooSmallMessageGivesTheEstimateAndTheLargestBatch()
    {
        var r = CliRunner.Run("train", "--device", "cpu", "--batch", "1000000", "--out", Path.Combine(dir, "run"));
        var e = MemoryEstimate.For(ModelConfig.Preset("tiny", 54, Residual.Post, LinearKind.SddCode), TrainConfig.ForPreset("tiny") with { Batch = 1_000_000 },
            AttentionStorage.Fused, fusedFfn: true, packedWeights: true); // the cpu device's plan
        Assert.That(r.Err, Does.Contain(MemoryEstimate.Format(e.RequiredBytes(true))).And.Contain("parameters 411.25 KiB (105,280)"));
        Assert.That(r.Err, Does.Match(@"the largest batch that fits is \d+ \(--batch \d+"));
    }

    [Test]
    public void DryRunPrintsTheEstimateAndCreatesNothing()
    {
        var outDir = Path.Combine(dir, "run");
        var r = CliRunner.Run("train", "--device", "cpu", "--dry-run", "--out", outDir);
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain("parameters (105,280)").And.Contain("activations (batch 8 × seq_len 64)").And.Contain("nothing was created"));
        Assert.That(Directory.Exists(outDir), Is.False);
        var big = CliRunner.Run("train", "--device", "cpu", "--dry-run", "--n-layer", "10000", "--out", outDir);
        Assert.That(big.Code, Is.EqualTo(1));
        Assert.That(big.Out, Does.Contain("parameters (508,803,520)"), "the table is printed before the refusal");
        Assert.That(Directory.Exists(outDir), Is.False);
    }

    // ---------------------------------------------------------------- §5 signals

    [TestCase(SddProcess.SigInt, 130, "SIGINT")]
    [TestCase(SddProcess.SigTerm, 143, "SIGTERM")]
    public void ASignalFinishesTheStepSavesAndPrintsTheResumeCommand(int signal, int exitCode, string name)
    {
        var outDir = Path.Combine(dir, "run");
        int step;
        string resume;
        using (var p = SddProcess.Start(LongRun(outDir)))
        {
            p.WaitForLine(IsProgress, Patience);
            p.Signal(signal);
            Assert.That(p.WaitForExit(Patience), Is.EqualTo(exitCode), p.Err);
            var stopped = p.WaitForLine(l => l.StartsWith("Stopped at step ", StringComparison.Ordinal), TimeSpan.Zero);
            Assert.That(stopped, Does.EndWith($"by {name}."));
            step = int.Parse(stopped.Split(' ')[3], System.Globalization.CultureInfo.InvariantCulture);
            resume = p.WaitForLine(l => l.StartsWith("Resume:", StringComparison.Ordinal), TimeSpan.Zero)["Resume:".Length..].Trim();
        }
        var ckpt = Path.Combine(outDir, Trainer.CheckpointFile);
        Assert.That(step, Is.InRange(1, 999_999));
        Assert.That(Checkpoint.ReadState(ckpt).Step, Is.EqualTo(step));
        Assert.That(StepRecord.ReadLog(Path.Combine(outDir, Trainer.LogFile))[^1].Step, Is.EqualTo(step));
        Assert.That(resume, Is.EqualTo($"sdd train --resume {ckpt} --device cpu"));

        // The printed command resumes (cut short with --stop-at) where the run stopped.
        var words = resume.Split(' ')[1..];
        var r = CliRunner.Run([.. words, "--stop-at", $"{step + 2}"]);
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain($"Resuming {ckpt} at step {step}"));
        Assert.That(Checkpoint.ReadState(ckpt).Step, Is.EqualTo(step + 2));
        Assert.That(StepRecord.ReadLog(Path.Combine(outDir, Trainer.LogFile)).Select(x => x.Step), Is.EqualTo(Enumerable.Range(1, step + 2)));
    }

    [Test]
    public void ASecondSigintAbortsAtOnce()
    {
        // Both signals must land inside the first step. On `cpu` this model's step takes a fraction of a second on a
        // quiet machine, a race that load hid; ILGPU's CPU accelerator compiles its kernels and simulates every group
        // in the first step, which takes tens of seconds on any machine, so the window does not depend on load.
        var outDir = Path.Combine(dir, "run");
        using var p = SddProcess.Start("train", "--device", "ilgpu-cpu", "--d-model", "192", "--n-layer", "4", "--n-head", "4", "--seq-len", "128",
            "--batch", "32", "--steps", "1000", "--out", outDir);
        p.WaitForLine(l => l.StartsWith("tokens/step", StringComparison.Ordinal), Patience);
        p.Signal(SddProcess.SigInt);
        p.WaitForLine(l => l.Contains("stopping after the current step", StringComparison.Ordinal), Patience, stderr: true);
        var clock = Stopwatch.StartNew();
        p.Signal(SddProcess.SigInt);
        Assert.That(p.WaitForExit(Patience), Is.EqualTo(130));
        Assert.That(p.Err, Does.Contain("SIGINT again: aborting"));
        Assert.That(p.Out, Does.Not.Contain("Stopped at step"));
        Assert.That(File.Exists(Path.Combine(outDir, Trainer.CheckpointFile)), Is.False, "aborted inside the first step: no checkpoint");
        Assert.That(clock.Elapsed.TotalSeconds, Is.LessThan(30));
    }

    // ---------------------------------------------------------------- §5 one run per folder

    [Test]
    public void ASecondRunIntoAFolderInUseIsRefusedAndTheFirstIsIntact()
    {
        var outDir = Path.Combine(dir, "run");
        using var first = SddProcess.Start(LongRun(outDir));
        first.WaitForLine(IsProgress, Patience);

        var second = CliRunner.Run(["train", .. Quick, "--steps", "3", "--out", outDir, "--overwrite"]);
        Assert.That(second.Code, Is.EqualTo(1));
        Assert.That(second.Err, Does.Contain($"'{outDir}' is in use by another sdd run"));
        using (var other = SddProcess.Start(["train", .. Quick, "--steps", "3", "--out", outDir, "--overwrite"]))
        {
            Assert.That(other.WaitForExit(Patience), Is.EqualTo(1), "the lock holds across processes");
            Assert.That(other.Err, Does.Contain($"'{outDir}' is in use"));
        }

        first.Signal(SddProcess.SigInt);
        Assert.That(first.WaitForExit(Patience), Is.EqualTo(130), first.Err);
        var step = Checkpoint.ReadState(Path.Combine(outDir, Trainer.CheckpointFile)).Step;
        Assert.That(StepRecord.ReadLog(Path.Combine(outDir, Trainer.LogFile)).Select(r => r.Step), Is.EqualTo(Enumerable.Range(1, step)));
    }

    [Test]
    public void AKilledRunLeavesNoStaleLockAndItsTemporaryIsRemoved()
    {
        var outDir = Path.Combine(dir, "run");
        int pid;
        using (var p = SddProcess.Start(LongRun(outDir)))
        {
            p.WaitForLine(IsProgress, Patience);
            pid = p.Id;
            p.Signal(SddProcess.SigKill);
            p.WaitForExit(Patience);
        }
        var temporary = Path.Combine(outDir, $".checkpoint.safetensors.{pid}.{Guid.NewGuid():N}.tmp"); // what a kill -9 mid-write leaves
        File.WriteAllText(temporary, "half a checkpoint");
        var refused = CliRunner.Run(["train", .. Quick, "--steps", "2", "--quiet", "--out", outDir]);
        Assert.That(refused.Code, Is.EqualTo(1));
        Assert.That(refused.Err, Does.Contain("already holds a run (log.jsonl)").And.Contain("--overwrite"));
        var r = CliRunner.Run(["train", .. Quick, "--steps", "2", "--quiet", "--out", outDir, "--overwrite"]);
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(File.Exists(temporary), Is.False);
        Assert.That(StepRecord.ReadLog(Path.Combine(outDir, Trainer.LogFile)).Select(x => x.Step), Is.EqualTo(new[] { 1, 2 }));
    }

    [Test]
    public void ANewRunInAnOldFolderIsRefusedAndOverwriteReplacesAllOfIt()
    {
        var outDir = Path.Combine(dir, "run");
        Assert.That(CliRunner.Run(["train", .. Quick, "--steps", "4", "--quiet", "--out", outDir]).Code, Is.Zero);
        var log = File.ReadAllText(Path.Combine(outDir, Trainer.LogFile));
        var refused = CliRunner.Run(["train", .. Quick, "--steps", "2", "--quiet", "--out", outDir]);
        Assert.That(refused.Code, Is.EqualTo(1));
        Assert.That(refused.Err, Does.Contain($"'{outDir}' already holds a run (checkpoint.safetensors, log.jsonl, loss.png)"));
        Assert.That(File.ReadAllText(Path.Combine(outDir, Trainer.LogFile)), Is.EqualTo(log), "the old log is untouched");
        Assert.That(CliRunner.Run(["train", .. Quick, "--steps", "2", "--quiet", "--out", outDir, "--overwrite"]).Code, Is.Zero);
        Assert.That(StepRecord.ReadLog(Path.Combine(outDir, Trainer.LogFile)).Select(x => x.Step), Is.EqualTo(new[] { 1, 2 }));
        Assert.That(Checkpoint.ReadState(Path.Combine(outDir, Trainer.CheckpointFile)).Step, Is.EqualTo(2), "no old checkpoint beside the new log");
    }

    [Test]
    public void ResumingIntoAnotherRunsFolderIsRefusedUnlessOverwriting()
    {
        string a = Path.Combine(dir, "a"), b = Path.Combine(dir, "b");
        Assert.That(CliRunner.Run(["train", .. Quick, "--steps", "2", "--quiet", "--out", a]).Code, Is.Zero);
        Assert.That(CliRunner.Run(["train", .. Quick, "--steps", "3", "--quiet", "--out", b]).Code, Is.Zero);
        var ckpt = Path.Combine(a, Trainer.CheckpointFile);
        var dry = CliRunner.Run("train", "--resume", ckpt, "--device", "cpu", "--steps", "4", "--dry-run");
        Assert.That(dry.Code, Is.Zero, dry.Err);
        Assert.That(dry.Out, Does.Contain("nothing was created"));
        Assert.That(Checkpoint.ReadState(ckpt).Step, Is.EqualTo(2));

        var refused = CliRunner.Run("train", "--resume", ckpt, "--device", "cpu", "--steps", "4", "--quiet", "--out", b);
        Assert.That(refused.Code, Is.EqualTo(1));
        Assert.That(refused.Err, Does.Contain($"'{b}' already holds a run"));
        Assert.That(Checkpoint.ReadState(Path.Combine(b, Trainer.CheckpointFile)).Step, Is.EqualTo(3));

        var r = CliRunner.Run("train", "--resume", ckpt, "--device", "cpu", "--steps", "4", "--quiet", "--out", b, "--overwrite");
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(Checkpoint.ReadState(Path.Combine(b, Trainer.CheckpointFile)).Step, Is.EqualTo(4));
        Assert.That(StepRecord.ReadLog(Path.Combine(b, Trainer.LogFile)).Select(x => x.Step), Is.EqualTo(new[] { 3, 4 }), "none of b's old log");

        // Resuming b in place, its folder spelt with a trailing slash, is a resume, not a new run.
        var again = CliRunner.Run("train", "--resume", b, "--device", "cpu", "--steps", "5", "--quiet", "--out", b + "/");
        Assert.That(again.Code, Is.Zero, again.Err);
        Assert.That(StepRecord.ReadLog(Path.Combine(b, Trainer.LogFile)).Select(x => x.Step), Is.EqualTo(new[] { 3, 4, 5 }));
    }

    // ---------------------------------------------------------------- §5 divergence

    [TestCase("0")]
    [TestCase("1")] // own case: with checkpoints every step the last good one is named with its step
    public void ADivergedRunNamesOnlyFilesThatExist(string checkpointEvery)
    {
        var outDir = Path.Combine(dir, "run");
        var r = CliRunner.Run(["train", .. Small, "--steps", "50", "--lr", "1e4", "--grad-clip", "0", "--warmup", "0", "--quiet",
            "--checkpoint-every", checkpointEvery, "--out", outDir]);
        Assert.That(r.Code, Is.EqualTo(3), r.Err);
        Assert.That(r.Out, Does.Contain("Diverged at step"));
        var paths = r.Out.Split('\n').Select(l => l.Trim())
            .Where(l => l.StartsWith("Checkpoint: /", StringComparison.Ordinal) || l.StartsWith("Log:", StringComparison.Ordinal) || l.StartsWith("Plot:", StringComparison.Ordinal))
            .Select(l => l[(l.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim().Split(' ')[0]).ToList();
        Assert.That(paths, Has.Count.GreaterThanOrEqualTo(2));
        Assert.That(paths.Where(p => !File.Exists(p)), Is.Empty, r.Out);
        if (checkpointEvery == "0")
            Assert.That(r.Out, Does.Contain("Checkpoint: none"));
    }
}
