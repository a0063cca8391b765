// Issue 10 §4: the memory estimate equals what a trainer allocates, impossible sizes are refused with the
// estimate and the largest batch that fits, and no size computation overflows silently.
using System.Diagnostics;
using NUnit.Framework;
using SddIlgpu.Layers;
using SddIlgpu.Tensors.Ops;
using SddIlgpu.Tests.Support;
using SddIlgpu.Training;
using SddIlgpu.Training.Data;

namespace SddIlgpu.Tests.Training;

public sealed class MemoryEstimateTests
{
    const long GiB = 1L << 30;

    static readonly Lazy<TextCorpus> Fables = new(() => TextCorpus.FromText(GeneratedCorpus.Generate(40_000), GeneratedCorpus.Name, "char"));

    static ModelConfig Tiny(Residual r = Residual.Post, LinearKind l = LinearKind.SddCode) => ModelConfig.Preset("tiny", 54, r, l);

    static readonly TrainConfig TinyTrain = TrainConfig.ForPreset("tiny");

    /// <summary>The `cpu` device's attention storage (fused: no (B, NH, T, T) buffers).</summary>
    static readonly IAttentionStorage Cpu = AttentionStorage.Fused;

    /// <summary>
    /// Every byte the trainer allocates is in the estimate, for each linear kind, GQA, and with the sampler on.
    /// This pins the estimate to the code: a layer that allocates more than its ActivationLength fails here.
    /// </summary>
    [TestCase(Residual.Post, LinearKind.SddCode, 4, 4, 0)]
    [TestCase(Residual.Pre, LinearKind.Plain, 4, 2, 0)]
    [TestCase(Residual.DeepNorm, LinearKind.SddPaper, 2, 1, 0)]
    [TestCase(Residual.Post, LinearKind.SddCode, 2, 1, 5)]
    public void EstimateEqualsTheBytesATrainerAllocates(Residual residual, LinearKind linear, int heads, int kvHeads, int sampleEvery)
    {
        var device = TestDevices.Get("cpu");
        var corpus = Fables.Value;
        var model = new ModelConfig(corpus.Tokenizer.VocabSize, 16, 3, heads, kvHeads, 40, 8, residual, linear);
        var train = new TrainConfig { Steps = 1, Batch = 3, EvalEvery = 0, EvalBatches = 1, SampleEvery = sampleEvery, SampleTokens = 2 };
        var estimate = MemoryEstimate.For(model, train, device.Ops.Attention, device.Ops.FusedFfn is not null, device.Ops.WeightPacking is not null);
        var dir = Directory.CreateTempSubdirectory("sdd-mem-").FullName;
        try
        {
            var before = device.Counters.AllocatedBytes;
            using var t = Trainer.Create(device, model, train, corpus, dir, new TrainerOptions { WritePlot = false });
            if (sampleEvery > 0)
                t.Sample("", 1, 1);
            Assert.That(device.Counters.AllocatedBytes - before, Is.EqualTo(estimate.DeviceBytes));
            Assert.That(estimate.ParameterCount, Is.EqualTo(t.Weights.Count));
            Assert.That(estimate.ActivationBytes, Is.EqualTo(4 * Model.ActivationLength(model, train.Batch, device.Ops.Attention, device.Ops.FusedFfn is not null)));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void ParameterCountOfTheTinyPresetByHand()
    {
        // V = 54, C = 64, L = 2, NH = KVH = 4, HS = 16, F = 176, sdd-code. Per block: 4·C² (wq wk wv wo) + 3·F·C
        // (up, gate, down) + gains: attn_norm C, q_norm HS, k_norm HS, ctx_norm C, o_norm C, ffn_norm C, upgate 2F,
        // down_norm C = 16,384 + 33,792 + 704 = 50,880. Plus the embedding V·C = 3,456 and the final norm C = 64.
        var e = MemoryEstimate.For(Tiny(), TinyTrain, Cpu);
        Assert.That(e.ParameterCount, Is.EqualTo(3_456 + 2 * 50_880 + 64));
        Assert.That(e.ParameterBytes, Is.EqualTo(4 * e.ParameterCount));
        Assert.That(e.GradientBytes, Is.EqualTo(4 * e.ParameterCount));
        Assert.That(e.OptimizerBytes, Is.EqualTo(4 * (3 * e.ParameterCount + 1)));
    }

    [TestCase(1)]
    [TestCase(4)]
    [TestCase(37)]
    public void CountingFromTwoBlocksEqualsTheFullLayout(int layers)
    {
        foreach (var linear in new[] { LinearKind.Plain, LinearKind.SddCode, LinearKind.SddPaper })
        {
            var c = new ModelConfig(70, 48, layers, 6, 2, 128, 16, Residual.Pre, linear);
            var layout = ModelWeights.Layout(c);
            Assert.That(MemoryEstimate.CountParameters(c),
                Is.EqualTo((layout.Sum(p => p.Shape.Length), (long)layout.Count(p => p.Kind == ParamKind.Matrix))), $"{linear}, L={layers}");
            // 48 and 128 are not multiples of 32: each copy is padded to whole 32-column panels
            Assert.That(MemoryEstimate.PackedWeightLength(c), Is.EqualTo(ModelWeights.PackedLength(c)).And.EqualTo(
                layout.Where(p => p.Kind == ParamKind.Matrix).Sum(p => (p.Shape[0] + 31) / 32 * 32 * (long)p.Shape[1] + (p.Shape[1] + 31) / 32 * 32 * (long)p.Shape[0])),
                $"packed copies, {linear}, L={layers}");
        }
    }

    /// <summary>Issue 10's three observed sizes, against a fixed 24 GiB machine: refused, one line, with the estimate.</summary>
    [Test]
    public void DModel100000IsRefusedEvenAtBatchOne()
    {
        var c = ModelConfig.Preset("tiny", 54, Residual.Post, LinearKind.SddCode) with { DModel = 100_000, FfnHidden = ModelConfig.DefaultFfnHidden(100_000) };
        var e = MemoryEstimate.For(c, TinyTrain, Cpu);
        var ex = Assert.Throws<RunTooLargeException>(() => e.EnsureFits(24 * GiB, 24 * GiB, true, "cpu", TinyTrain))!;
        Assert.That(ex.Message, Does.Not.Contain("\n"));
        Assert.That(ex.Message, Does.Contain("not even --batch 1 fits"));
        // 2 blocks of 4·C² + 3·F·C with F = 266,672: 1.6e11 parameters, ~0.6 TB each for weights and gradients.
        Assert.That(e.ParameterCount, Is.GreaterThan(2 * (4L * 100_000 * 100_000 + 3L * 266_672 * 100_000)));
    }

    [Test]
    public void NLayer10000IsRefusedWithTheLargestBatchThatFits()
    {
        var c = Tiny() with { NLayer = 10_000 };
        var e = MemoryEstimate.For(c, TinyTrain, Cpu);
        Assert.That(e.ParameterCount, Is.EqualTo(3_456 + 10_000L * 50_880 + 64));
        // 10 GB of weights, gradients and moments, 12 GB of checkpoint staging and ~7.5 GB of activations per sequence.
        var small = Assert.Throws<RunTooLargeException>(() => e.EnsureFits(24 * GiB, 24 * GiB, true, "cpu", TinyTrain))!;
        Assert.That(small.Message, Does.Contain(MemoryEstimate.Format(e.RequiredBytes(true))).And.Contain("24.00 GiB").And.Contain("not even --batch 1"));
        Assert.That(MemoryEstimate.For(c, TinyTrain with { Batch = 1 }, Cpu).Fits(24 * GiB, 24 * GiB, true), Is.False);
        var big = Assert.Throws<RunTooLargeException>(() => e.EnsureFits(64 * GiB, 64 * GiB, true, "cpu", TinyTrain))!;
        AssertLargestBatchIsExact(c, TinyTrain, 64 * GiB, big.Message);
    }

    [Test]
    public void Batch1000000IsRefusedWithTheLargestBatchThatFits()
    {
        var train = TinyTrain with { Batch = 1_000_000 };
        var e = MemoryEstimate.For(Tiny(), train, Cpu);
        Assert.That(e.LargestTensor, Is.EqualTo(1_000_000L * 64 * 2 * 176), "SwiGLU's [up | gate], B·T·2F");
        var ex = Assert.Throws<RunTooLargeException>(() => e.EnsureFits(24 * GiB, 24 * GiB, true, "cpu", train))!;
        var best = AssertLargestBatchIsExact(Tiny(), train, 24 * GiB, ex.Message);
        Assert.That(best, Is.InRange(100, 1_000_000 - 1));
    }

    /// <summary>The largest batch the message names fits, and one more does not.</summary>
    static int AssertLargestBatchIsExact(ModelConfig c, TrainConfig train, long memory, string message)
    {
        var best = MemoryEstimate.LargestBatch(c, train, Cpu, memory, memory, true, train.Batch - 1);
        Assert.That(best, Is.Positive, message);
        Assert.That(message, Does.Contain($"--batch {best}"));
        Assert.That(MemoryEstimate.For(c, train with { Batch = best }, Cpu).Fits(memory, memory, true), Is.True);
        Assert.That(MemoryEstimate.For(c, train with { Batch = best + 1 }, Cpu).Fits(memory, memory, true), Is.False);
        return best;
    }

    [Test]
    public void AGpuRunIsCheckedAgainstDeviceMemoryAndHostStagingAgainstRam()
    {
        var e = MemoryEstimate.For(Tiny(), TinyTrain, Cpu);
        Assert.That(e.Fits(e.DeviceBytes, e.HostBytes, hostMemoryDevice: false), Is.True);
        Assert.That(e.Fits(e.DeviceBytes - 1, long.MaxValue, hostMemoryDevice: false), Is.False);
        Assert.That(e.Fits(long.MaxValue, e.HostBytes - 1, hostMemoryDevice: false), Is.False);
        Assert.That(e.Fits(e.DeviceBytes + e.HostBytes, 0, hostMemoryDevice: true), Is.True);
        Assert.That(e.Fits(e.DeviceBytes + e.HostBytes - 1, long.MaxValue, hostMemoryDevice: true), Is.False);
        var ex = Assert.Throws<RunTooLargeException>(() => e.EnsureFits(e.DeviceBytes - 1, long.MaxValue, false, "cuda:0", TinyTrain))!;
        Assert.That(ex.Message, Does.Contain("cuda:0's memory"));
    }

    /// <summary>Own case: sizes whose products overflow int rows or long bytes are refused at once, not wrapped.</summary>
    [Test]
    public void OverflowingSizesAreRefusedInstantly()
    {
        var clock = Stopwatch.StartNew();
        var deep = MemoryEstimate.For(Tiny() with { NLayer = 100_000_000 }, TinyTrain, Cpu); // counting must not enumerate blocks
        Assert.That(deep.ParameterCount, Is.EqualTo(3_456 + 100_000_000L * 50_880 + 64));
        Assert.That(deep.Fits(long.MaxValue, long.MaxValue, true), Is.False, "parameters exceed one tensor's limit");
        Assert.Throws<RunTooLargeException>(() => MemoryEstimate.For(Tiny() with { NLayer = int.MaxValue }, TinyTrain, Cpu));
        var rows = TinyTrain with { Batch = int.MaxValue / 8 };
        Assert.Throws<OverflowException>(() => Model.ActivationLength(Tiny(), rows.Batch, Cpu), "B·T past int rows must throw, not wrap");
        var ex = Assert.Throws<RunTooLargeException>(() => MemoryEstimate.For(Tiny(), rows, Cpu))!;
        Assert.That(ex.Message, Does.Contain("too large to address").And.Contain("--batch"));
        Assert.That(MemoryEstimate.LargestBatch(Tiny(), rows, Cpu, 24 * GiB, 24 * GiB, true, rows.Batch), Is.InRange(1, rows.Batch - 1));
        var wide = Assert.Throws<ArgumentException>(() => ModelConfig.DefaultFfnHidden(1_000_000_000))!;
        Assert.That(wide.Message, Does.Contain("--d-model"));
        Assert.That(clock.Elapsed.TotalSeconds, Is.LessThan(5));
    }

    [Test]
    public void TheCpuDeviceReportsAvailableHostMemory()
    {
        var device = TestDevices.Get("cpu");
        var bytes = device.MemoryBytes;
        Assert.That(bytes, Is.Positive.And.LessThanOrEqualTo(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes));
        if (OperatingSystem.IsLinux())
        {
            var line = File.ReadLines("/proc/meminfo").First(l => l.StartsWith("MemAvailable:", StringComparison.Ordinal));
            var kb = long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);
            Assert.That((double)bytes, Is.EqualTo(Math.Min(kb * 1024.0, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes)).Within(2e9), "MemAvailable moves, but not by gigabytes");
        }
    }

    [Test]
    public void ARefusedTrainerCreatesNoFolder()
    {
        var device = TestDevices.Get("cpu");
        var corpus = Fables.Value;
        var dir = Path.Combine(Path.GetTempPath(), $"sdd-refused-{Guid.NewGuid():N}");
        var model = new ModelConfig(corpus.Tokenizer.VocabSize, 16, 10_000_000, 2, 2, 40, 8, Residual.Pre, LinearKind.Plain);
        var before = device.Counters.AllocatedBytes;
        Assert.Throws<RunTooLargeException>(() => Trainer.Create(device, model, new TrainConfig { Batch = 2 }, corpus, dir));
        Assert.That(Directory.Exists(dir), Is.False);
        Assert.That(device.Counters.AllocatedBytes, Is.EqualTo(before));
    }
}
