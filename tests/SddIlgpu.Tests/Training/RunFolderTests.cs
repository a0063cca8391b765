// Issue 10 §5 at library level: the output folder's lock, the refusal to mix two runs' files, stale
// temporaries, cancellation that checkpoints and resumes exactly, and divergence that names only real files.
using NUnit.Framework;
using SddIlgpu.Layers;
using SddIlgpu.Tests.Support;
using SddIlgpu.Training;
using SddIlgpu.Training.Checkpoints;
using SddIlgpu.Training.Data;
using SddIlgpu.Training.Metrics;

namespace SddIlgpu.Tests.Training;

public sealed class RunFolderTests
{
    string dir = null!;

    [SetUp]
    public void MakeDir() => dir = Directory.CreateTempSubdirectory("sdd-folder-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(dir, recursive: true);

    static readonly Lazy<TextCorpus> Fables = new(() => TextCorpus.FromText(GeneratedCorpus.Generate(40_000), GeneratedCorpus.Name, "char"));

    static ModelConfig Small(int vocab) => new(vocab, 16, 2, 2, 1, 24, 8, Residual.Post, LinearKind.SddCode);

    static readonly TrainConfig ShortRun = new() { Steps = 6, Batch = 2, Lr = 3e-3, Warmup = 2, EvalEvery = 0, EvalBatches = 1, Seed = 11 };

    [Test]
    public void AFolderInUseIsRefusedNamingItAndFreedOnDispose()
    {
        var run = Path.Combine(dir, "run");
        using (RunFolder.Open(run, RunFolderMode.New))
        {
            var e = Assert.Throws<RunFolderException>(() => RunFolder.Open(run, RunFolderMode.Resume))!;
            Assert.That(e.Message, Does.Contain($"'{run}'").And.Contain("in use by another sdd run"));
            Assert.Throws<RunFolderException>(() => RunFolder.Open(run, RunFolderMode.Overwrite));
        }
        using (RunFolder.Open(run, RunFolderMode.New))
        {
            // released: it opens again
        }
    }

    [Test]
    public void ANewRunIsRefusedInAFolderHoldingAnotherRun()
    {
        var run = Path.Combine(dir, "run");
        Directory.CreateDirectory(run);
        File.WriteAllText(Path.Combine(run, Trainer.LogFile), "{}\n");
        var e = Assert.Throws<RunFolderException>(() => RunFolder.Open(run, RunFolderMode.New))!;
        Assert.That(e.Message, Does.Contain($"'{run}'").And.Contain("log.jsonl").And.Contain("--overwrite").And.Contain("--resume"));
        using (RunFolder.Open(run, RunFolderMode.Resume))
            Assert.That(File.Exists(Path.Combine(run, Trainer.LogFile)), "resuming keeps the run's files");
    }

    [Test]
    public void OverwriteRemovesTheOldRunsFilesTogether()
    {
        var run = Path.Combine(dir, "run");
        Directory.CreateDirectory(run);
        foreach (var f in RunFolder.RunFiles)
            File.WriteAllText(Path.Combine(run, f), "old");
        File.WriteAllText(Path.Combine(run, "notes.txt"), "mine");
        using (RunFolder.Open(run, RunFolderMode.Overwrite))
        {
            Assert.That(RunFolder.RunFiles.Where(f => File.Exists(Path.Combine(run, f))), Is.Empty);
            Assert.That(File.ReadAllText(Path.Combine(run, "notes.txt")), Is.EqualTo("mine"));
        }
    }

    [Test]
    public void StaleTemporariesOfDeadWritersAreRemovedAndNothingElse()
    {
        var run = Path.Combine(dir, "run");
        Directory.CreateDirectory(run);
        var deadPid = DeadPid();
        var stale = Path.Combine(run, $".checkpoint.safetensors.{deadPid}.{Guid.NewGuid():N}.tmp");
        var live = Path.Combine(run, $".log.jsonl.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        string[] foreign = [Path.Combine(run, "data.tmp"), Path.Combine(run, ".notes.tmp"), Path.Combine(run, $".x.{deadPid}.short.tmp")];
        foreach (var f in foreign.Append(stale).Append(live))
            File.WriteAllText(f, "x");
        using var folder = RunFolder.Open(run, RunFolderMode.New);
        Assert.That(folder.RemovedTemporaries, Is.EqualTo(new[] { stale }));
        Assert.That(File.Exists(stale), Is.False);
        Assert.That(foreign.Append(live).All(File.Exists), "other files and a live writer's temporary stay");
    }

    /// <summary>A pid no process has: past the kernel's pid_max.</summary>
    static int DeadPid() =>
        OperatingSystem.IsLinux() ? int.Parse(File.ReadAllText("/proc/sys/kernel/pid_max").Trim(), System.Globalization.CultureInfo.InvariantCulture) + 1 : 999_999_999;

    [Test]
    public void ACancelledRunCheckpointsAndResumesBitExactly()
    {
        var device = TestDevices.Get("cpu");
        var corpus = Fables.Value;
        var model = Small(corpus.Tokenizer.VocabSize);
        float[] straight;
        using (var t = Trainer.Create(device, model, ShortRun, corpus, Path.Combine(dir, "straight"), new TrainerOptions { WritePlot = false }))
        {
            t.Run();
            straight = t.Weights.Values.ToArray();
        }
        var run = Path.Combine(dir, "cut");
        using var cts = new CancellationTokenSource();
        var options = new TrainerOptions { WritePlot = false, Cancellation = cts.Token, OnStep = (r, _) => { if (r.Step == 2) cts.Cancel(); } };
        using (var t = Trainer.Create(device, model, ShortRun, corpus, run, options))
        {
            var r = t.Run();
            Assert.That((r.Interrupted, r.Steps, r.CheckpointStep, r.CheckpointPath), Is.EqualTo((true, 2, (int?)2, t.CheckpointPath)));
            Assert.That(Checkpoint.ReadState(t.CheckpointPath).Step, Is.EqualTo(2));
        }
        using (var t = Trainer.Resume(device, Path.Combine(run, Trainer.CheckpointFile), corpus, run, new TrainerOptions { WritePlot = false }))
        {
            var r = t.Run();
            Assert.That((r.Interrupted, r.Steps), Is.EqualTo((false, 6)));
            Check.BitIdentical(t.Weights.Values.ToArray(), straight, "weights after an interrupted run resumed");
        }
    }

    [Test]
    public void ANewTrainerInAnOldRunsFolderIsRefusedUnlessOverwriting()
    {
        var device = TestDevices.Get("cpu");
        var corpus = Fables.Value;
        var model = Small(corpus.Tokenizer.VocabSize);
        var run = Path.Combine(dir, "run");
        using (var t = Trainer.Create(device, model, ShortRun with { Steps = 4 }, corpus, run, new TrainerOptions { WritePlot = false }))
            t.Run();
        var before = File.ReadAllBytes(Path.Combine(run, Trainer.CheckpointFile));
        Assert.Throws<RunFolderException>(() => Trainer.Create(device, model, ShortRun, corpus, run));
        Assert.That(File.ReadAllBytes(Path.Combine(run, Trainer.CheckpointFile)), Is.EqualTo(before), "the refused run touched nothing");
        Assert.That(StepRecord.ReadLog(Path.Combine(run, Trainer.LogFile)), Has.Count.EqualTo(4));

        using (var t = Trainer.Create(device, model, ShortRun with { Steps = 2 }, corpus, run, new TrainerOptions { WritePlot = false, Overwrite = true }))
        {
            Assert.That(File.Exists(t.CheckpointPath), Is.False, "no old checkpoint beside the new log");
            t.Run();
        }
        Assert.That(StepRecord.ReadLog(Path.Combine(run, Trainer.LogFile)).Select(r => r.Step), Is.EqualTo(new[] { 1, 2 }));
        Assert.That(Checkpoint.ReadState(Path.Combine(run, Trainer.CheckpointFile)).Step, Is.EqualTo(2));
    }

    /// <summary>Observed: `--lr 1e4 --grad-clip 0` named a checkpoint that does not exist; own case: with
    /// --checkpoint-every 1 the last good checkpoint is named with its step.</summary>
    [TestCase(0)]
    [TestCase(1)]
    public void ADivergedRunNamesOnlyFilesThatExistAndItsPlotMarksTheStep(int checkpointEvery)
    {
        var device = TestDevices.Get("cpu");
        var corpus = Fables.Value;
        var run = Path.Combine(dir, "run");
        var train = ShortRun with { Steps = 50, Lr = 1e4, GradClip = 0, Warmup = 0, CheckpointEvery = checkpointEvery };
        using var t = Trainer.Create(device, Small(corpus.Tokenizer.VocabSize), train, corpus, run);
        var r = t.Run();
        Assert.That(r.Diverged, Is.True);
        Assert.That(r.Steps, Is.LessThan(50));
        if (checkpointEvery == 0 || r.Steps == 1)
        {
            Assert.That(r.CheckpointPath, Is.Null);
            Assert.That(File.Exists(t.CheckpointPath), Is.False);
        }
        else
        {
            Assert.That(r.CheckpointPath, Is.EqualTo(t.CheckpointPath));
            Assert.That(r.CheckpointStep, Is.EqualTo(r.Steps - 1));
            Assert.That(Checkpoint.ReadState(r.CheckpointPath!).Step, Is.EqualTo(r.Steps - 1));
        }
        Assert.That(File.Exists(r.LogPath) && File.Exists(r.PlotPath), Is.True);
        Assert.That(LossPlot.Divergence(r.Log)!.Step, Is.EqualTo(r.Steps));
        using var plot = LossPlot.Build(r.Log, "diverged");
        var marks = plot.GetPlottables<ScottPlot.Plottables.VerticalLine>().ToList();
        Assert.That(marks.Select(m => m.X), Is.EqualTo(new[] { (double)r.Steps }));
        Assert.That(marks[0].LabelText, Does.StartWith($"diverged at step {r.Steps}"));
    }

    [Test]
    public void AHealthyPlotHasNoDivergenceMark()
    {
        var records = Enumerable.Range(1, 5).Select(i => new StepRecord { Step = i, Loss = 4.0 / i }).ToList();
        using var plot = LossPlot.Build(records, "healthy");
        Assert.That(plot.GetPlottables<ScottPlot.Plottables.VerticalLine>(), Is.Empty);
        Assert.That(LossPlot.Divergence(records), Is.Null);
    }
}
