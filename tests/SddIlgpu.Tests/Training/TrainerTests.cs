using NUnit.Framework;
using SddIlgpu.Layers;
using SddIlgpu.Tests.Support;
using SddIlgpu.Training;
using SddIlgpu.Training.Data;

namespace SddIlgpu.Tests.Training;

public sealed class TrainerTests
{
    string dir = null!;

    [SetUp]
    public void MakeDir() => dir = Directory.CreateTempSubdirectory("sdd-train-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(dir, recursive: true);

    static readonly Lazy<TextCorpus> Fables = new(() => TextCorpus.FromText(GeneratedCorpus.Generate(60_000), GeneratedCorpus.Name, "char"));

    static ModelConfig Small(int vocab, Residual r, LinearKind l) =>
        new(vocab, DModel: 16, NLayer: 2, NHead: 2, NKvHead: 1, FfnHidden: 24, SeqLen: 8, Residual: r, Linear: l);

    static readonly TrainConfig ShortRun = new()
    {
        Steps = 6, Batch = 2, GradAccum = 2, Lr = 3e-3, Warmup = 2, EvalEvery = 3, EvalBatches = 2, Seed = 7, CheckpointEvery = 0,
    };

    /// <summary>Issue 4: 2N steps equal N steps, a checkpoint, a resume and N more, bit for bit.</summary>
    [TestCase("ilgpu-cpu", Residual.Post, LinearKind.SddCode)]
    [TestCase("opencl", Residual.Post, LinearKind.SddCode)]
    [TestCase("cpu", Residual.Post, LinearKind.SddCode)]
    [TestCase("cpu", Residual.Pre, LinearKind.SddPaper)]
    public void ResumingEqualsTrainingStraightThrough(string deviceName, Residual residual, LinearKind linear)
    {
        var device = TestDevices.Get(deviceName);
        var corpus = Fables.Value;
        var model = Small(corpus.Tokenizer.VocabSize, residual, linear);
        var options = new TrainerOptions { WritePlot = false };

        float[] straight;
        using (var t = Trainer.Create(device, model, ShortRun, corpus, Path.Combine(dir, "straight"), options))
        {
            t.Run();
            straight = t.Weights.Values.ToArray();
        }

        var half = Path.Combine(dir, "half");
        using (var t = Trainer.Create(device, model, ShortRun, corpus, half, options with { StopAtStep = 3 }))
        {
            var r = t.Run();
            Assert.That(r.Steps, Is.EqualTo(3));
        }
        using (var t = Trainer.Resume(device, Path.Combine(half, Trainer.CheckpointFile), corpus, half, options))
        {
            Assert.That(t.Step, Is.EqualTo(3));
            var r = t.Run();
            Assert.That(r.Steps, Is.EqualTo(6));
            Check.BitIdentical(t.Weights.Values.ToArray(), straight, "weights after resume");
            Assert.That(StepsLogged(Path.Combine(half, Trainer.LogFile)), Is.EqualTo(new[] { 1, 2, 3, 4, 5, 6 }));
        }
    }

    static int[] StepsLogged(string path) => [.. SddIlgpu.Training.Metrics.StepRecord.ReadLog(path).Select(r => r.Step)];

    [Test]
    public void SameSeedSameDeviceIsBitIdentical()
    {
        var device = TestDevices.Get("cpu");
        var corpus = Fables.Value;
        var model = Small(corpus.Tokenizer.VocabSize, Residual.Post, LinearKind.SddCode);
        var runs = new List<float[]>();
        for (var i = 0; i < 2; i++)
        {
            using var t = Trainer.Create(device, model, ShortRun with { Steps = 3 }, corpus, Path.Combine(dir, $"r{i}"), new TrainerOptions { WritePlot = false });
            t.Run();
            runs.Add(t.Weights.Values.ToArray());
        }
        Check.BitIdentical(runs[1], runs[0], "two runs");
    }

    [Test]
    public void RunFolderHoldsCheckpointLogAndPlot()
    {
        var device = TestDevices.Get("cpu");
        var corpus = Fables.Value;
        var model = Small(corpus.Tokenizer.VocabSize, Residual.Pre, LinearKind.Plain);
        var outDir = Path.Combine(dir, "run");
        using var t = Trainer.Create(device, model, ShortRun with { SampleEvery = 6, SampleTokens = 12 }, corpus, outDir);
        var result = t.Run();
        Assert.That(File.Exists(Path.Combine(outDir, Trainer.CheckpointFile)));
        Assert.That(File.ReadAllBytes(Path.Combine(outDir, Trainer.PlotFile))[1..4], Is.EqualTo("PNG"u8.ToArray()));
        var log = SddIlgpu.Training.Metrics.StepRecord.ReadLog(Path.Combine(outDir, Trainer.LogFile));
        Assert.That(log, Has.Count.EqualTo(6));
        Assert.That(log[^1].ValLoss, Is.Not.Null);
        Assert.That(log[^1].Sample, Has.Length.GreaterThanOrEqualTo(12));
        Assert.That(log[0].LayerGradNorms!.Keys, Has.Member("blocks.0.attn.wq.weight").And.Member("blocks.1.ffn.w_down.weight"));
        Assert.That(log.All(r => r.GradNorm > 0 && r.TokensPerSecond > 0));
        Assert.That(result.Diverged, Is.False);
    }
}
