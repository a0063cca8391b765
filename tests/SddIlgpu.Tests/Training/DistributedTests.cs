// Data parallelism over MPI (issue 13): two ranks with k accumulation steps against one process with 2k, the
// same rank count twice, resume, and a failing or killed rank. Each test launches mpirun with the sdd built
// beside the tests, on the cpu device with a tiny model.
using System.Diagnostics;
using NUnit.Framework;
using SddIlgpu.Layers;
using SddIlgpu.Tensors;
using SddIlgpu.Tests.Cli;
using SddIlgpu.Tests.Support;
using SddIlgpu.Training.Distributed;
using SddIlgpu.Training.Metrics;

namespace SddIlgpu.Tests.Training;

[NonParallelizable]
public sealed class DistributedTests
{
    string dir = null!;
    string twoRanks = null!;

    static readonly string[] Tiny =
    [
        "train", "--device", "cpu", "--d-model", "32", "--n-layer", "2", "--n-head", "2", "--seq-len", "16", "--batch", "2",
        "--eval-every", "10", "--eval-batches", "3", "--lr", "0.01", "--warmup", "5", "--quiet",
    ];

    [OneTimeSetUp]
    public void TrainTwoRanks()
    {
        dir = Directory.CreateTempSubdirectory("sdd-mpi-").FullName;
        twoRanks = Path.Combine(dir, "n2");
        var r = MpiRunner.Run(2, [.. Tiny, "--steps", "20", "--grad-accum", "2", "--out", twoRanks]);
        Assert.That(r.Code, Is.Zero, r.Err + r.Out);
    }

    [OneTimeTearDown]
    public void RemoveDir()
    {
        if (dir is not null)
            Directory.Delete(dir, recursive: true);
    }

    static string Checkpoint(string run) => Path.Combine(run, SddIlgpu.Training.Trainer.CheckpointFile);

    static List<StepRecord> Log(string run) => StepRecord.ReadLog(Path.Combine(run, SddIlgpu.Training.Trainer.LogFile));

    [Test]
    public void TwoRanksMatchOneProcessWithDoubledAccumulation()
    {
        var one = Path.Combine(dir, "n1");
        var r = CliRunner.Run([.. Tiny, "--steps", "20", "--grad-accum", "4", "--out", one]);
        Assert.That(r.Code, Is.Zero, r.Err);

        var (a, b) = (Log(one), Log(twoRanks));
        Assert.That(b.Select(x => x.Step), Is.EqualTo(a.Select(x => x.Step)));
        Assert.That(a, Has.Count.EqualTo(20));
        for (var i = 0; i < a.Count; i++)
        {
            Assert.That(SignificantDigits(b[i].Loss, a[i].Loss), Is.True, $"step {a[i].Step}: loss {b[i].Loss:R} with 2 ranks, {a[i].Loss:R} alone");
            Assert.That(SignificantDigits(b[i].GradNorm, a[i].GradNorm), Is.True, $"step {a[i].Step}: gradient norm {b[i].GradNorm:R} vs {a[i].GradNorm:R}");
            if (a[i].ValLoss is double v)
                Assert.That(SignificantDigits(b[i].ValLoss!.Value, v), Is.True, $"step {a[i].Step}: validation loss {b[i].ValLoss:R} vs {v:R}");
        }

        var (w1, w2) = (Safetensors.Read(Checkpoint(one)), Safetensors.Read(Checkpoint(twoRanks)));
        Assert.That(w2.Metadata["world_size"], Is.EqualTo("2"));
        Assert.That(w2.Tensors.Keys, Is.EquivalentTo(w1.Tensors.Keys));
        foreach (var (name, (_, expected)) in Weights(w1))
        {
            // Normwise: max|a − e| ≤ 1e-6 · max|e| per tensor. Element by element the relative difference of the
            // weights that pass near zero is larger (docs/distributed.md): their absolute differences are the
            // same ~1e-7 as everywhere else, from gradients summed as (g0+g2)+(g1+g3) instead of ((g0+g1)+g2)+g3.
            var (diff, scale) = Difference(w2.Tensors[name].Data, expected);
            Assert.That(diff, Is.LessThanOrEqualTo(1e-6 * scale), $"{name} after 20 steps: max difference {diff:E2}, max |weight| {scale:E2}");
        }
    }

    [Test]
    public void OneStepOfTwoSingleBatchRanksIsBitIdenticalExceptTheTiedEmbedding()
    {
        // With one micro-batch per rank the allreduce adds the two micro-batch gradients exactly as one
        // process accumulates them, (0 + g0) + g1 = g0 + g1, so every parameter comes out bit-identical, except
        // the tied embedding: it collects two terms per micro-batch (LM head and token lookup), summed as
        // ((h0 + e0) + h1) + e1 alone but (h0 + e0) + (h1 + e1) over two ranks. Clipping is off: the clip
        // factor would carry the embedding's last-bit difference into every parameter.
        string[] oneStep = [.. Tiny, "--steps", "1", "--grad-clip", "0"];
        var (alone, ranks) = (Path.Combine(dir, "step-n1"), Path.Combine(dir, "step-n2"));
        var r = MpiRunner.Run(2, [.. oneStep, "--grad-accum", "1", "--out", ranks]);
        Assert.That(r.Code, Is.Zero, r.Err);
        var c = CliRunner.Run([.. oneStep, "--grad-accum", "2", "--out", alone]);
        Assert.That(c.Code, Is.Zero, c.Err);
        Assert.That(Log(ranks)[0].Loss, Is.EqualTo(Log(alone)[0].Loss));
        var (w1, w2) = (Safetensors.Read(Checkpoint(alone)), Safetensors.Read(Checkpoint(ranks)));
        foreach (var (name, (_, expected)) in w1.Tensors)
        {
            var actual = w2.Tensors[name].Data;
            if (name.EndsWith("embed.weight", StringComparison.Ordinal))
            {
                var (diff, scale) = Difference(actual, expected);
                Assert.That(diff, Is.LessThanOrEqualTo(1e-6 * scale), name);
            }
            else
            {
                Assert.That(actual, Is.EqualTo(expected), $"{name} is not bit-identical");
            }
        }
    }

    static IEnumerable<KeyValuePair<string, (Shape Shape, float[] Data)>> Weights(SafetensorsFile f) =>
        f.Tensors.Where(t => !t.Key.StartsWith("optim.", StringComparison.Ordinal));

    /// <summary>(max |a − e|, max |e|).</summary>
    static (double Diff, double Scale) Difference(float[] actual, float[] expected)
    {
        var (diff, scale) = (0.0, 0.0);
        for (var i = 0; i < expected.Length; i++)
        {
            diff = Math.Max(diff, Math.Abs(actual[i] - (double)expected[i]));
            scale = Math.Max(scale, Math.Abs(expected[i]));
        }
        return (diff, scale);
    }

    /// <summary>
    /// Agree to 6 significant digits: the difference is under half a unit of the 6th significant digit of the
    /// expected value (comparing rounded strings would fail on a rounding boundary: 0.82778751 vs 0.82778747).
    /// </summary>
    static bool SignificantDigits(double actual, double expected) =>
        Math.Abs(actual - expected) < 0.5 * Math.Pow(10, Math.Floor(Math.Log10(Math.Abs(expected))) - 5);

    [Test]
    public void SameRankCountIsBitIdentical()
    {
        var again = Path.Combine(dir, "n2-again");
        var r = MpiRunner.Run(2, [.. Tiny, "--steps", "20", "--grad-accum", "2", "--out", again]);
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(File.ReadAllBytes(Checkpoint(again)), Is.EqualTo(File.ReadAllBytes(Checkpoint(twoRanks))));
        Assert.That(Log(again).Select(x => (x.Loss, x.GradNorm, x.ValLoss)), Is.EqualTo(Log(twoRanks).Select(x => (x.Loss, x.GradNorm, x.ValLoss))));
    }

    [Test]
    public void ResumeWithTheSameRankCountIsExactAndAnotherCountIsRefused()
    {
        var split = Path.Combine(dir, "n2-split");
        var first = MpiRunner.Run(2, [.. Tiny, "--steps", "20", "--grad-accum", "2", "--stop-at", "10", "--out", split]);
        Assert.That(first.Code, Is.Zero, first.Err);

        var alone = CliRunner.Run("train", "--resume", Checkpoint(split), "--device", "cpu", "--quiet");
        Assert.That(alone.Code, Is.EqualTo(1));
        Assert.That(alone.Err, Does.Contain("2 processes").And.Contain("mpirun -np 2"));

        var rest = MpiRunner.Run(2, ["train", "--resume", Checkpoint(split), "--device", "cpu", "--quiet"]);
        Assert.That(rest.Code, Is.Zero, rest.Err);
        Assert.That(File.ReadAllBytes(Checkpoint(split)), Is.EqualTo(File.ReadAllBytes(Checkpoint(twoRanks))));
        Assert.That(Log(split).Select(x => x.Loss), Is.EqualTo(Log(twoRanks).Select(x => x.Loss)));
    }

    [Test]
    public void RankWithBadDataStopsEveryRank()
    {
        var run = Path.Combine(dir, "bad-data");
        var missing = Path.Combine(dir, "no-such-corpus.txt");
        string[] args = [.. Tiny, "--steps", "1000", "--out", run];
        var r = MpiRunner.RunEach([args, [.. args, "--data", missing]], TimeSpan.FromSeconds(60));
        Assert.That(r.Code, Is.Not.Zero);
        Assert.That(r.Err, Does.Contain("rank 1 of 2 failed").And.Contain(missing));
        AssertNothingWritten(run);
    }

    [Test]
    public void KilledRankStopsEveryRankWithinSeconds()
    {
        var run = Path.Combine(dir, "killed");
        var killedAt = TimeSpan.Zero;
        var clock = Stopwatch.StartNew();
        var r = MpiRunner.Launch(
            ["--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", "2", .. MpiRunner.Sdd, .. Tiny, "--steps", "100000", "--out", run],
            TimeSpan.FromMinutes(2),
            mpirun =>
            {
                var log = Path.Combine(run, SddIlgpu.Training.Trainer.LogFile);
                while (!(File.Exists(log) && File.ReadAllLines(log).Length >= 3))
                {
                    Assert.That(mpirun.HasExited, Is.False, "mpirun ended before training started");
                    Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(90)), "training did not start");
                    Thread.Sleep(100);
                }
                var pid = MpiRunner.RankProcess(mpirun, 1);
                Assert.That(pid, Is.Not.Null, "rank 1's process was not found under mpirun");
                Process.GetProcessById(pid!.Value).Kill();
                killedAt = clock.Elapsed;
            });
        var stopped = clock.Elapsed - killedAt;
        TestContext.Out.WriteLine($"mpirun exited {stopped.TotalSeconds:F1} s after rank 1 was killed, code {r.Code}");
        Assert.That(r.Code, Is.Not.Zero);
        Assert.That(stopped, Is.LessThan(TimeSpan.FromSeconds(10)), "the surviving rank hung");
        Assert.That(r.Err + r.Out, Does.Contain("signal 9").Or.Contain("Killed"));
        AssertNothingWritten(run, logAllowed: true);
    }

    static void AssertNothingWritten(string run, bool logAllowed = false)
    {
        if (!Directory.Exists(run))
            return;
        var files = Directory.GetFiles(run).Select(Path.GetFileName).ToList();
        Assert.That(files, Has.None.EndsWith(".tmp"), "a temporary file was left");
        Assert.That(files, Has.No.Member(SddIlgpu.Training.Trainer.CheckpointFile), "no step finished, so no checkpoint may exist");
        if (!logAllowed)
            Assert.That(files, Has.No.Member(SddIlgpu.Training.Trainer.LogFile));
    }
}

/// <summary>How a process finds its group, without starting MPI.</summary>
public sealed class CollectiveTests
{
    static Func<string, string?> Env(params (string Name, string Value)[] vars) =>
        name => vars.FirstOrDefault(v => v.Name == name).Value;

    [Test]
    public void WithoutALauncherTheProcessIsAlone()
    {
        var world = Collective.FromEnvironment(Env());
        Assert.That(world, Is.SameAs(SingleProcess.Instance));
        Assert.That((world.Rank, world.Size, world.LocalRank), Is.EqualTo((0, 1, 0)));
        Span<float> x = [1f, 2f];
        world.AllReduceSum(x);
        Assert.That(x.ToArray(), Is.EqualTo(new[] { 1f, 2f }));
    }

    [Test]
    public void OpenMpiAndPmixLaunchersAreDetected()
    {
        Assert.That(Collective.LaunchedBy(Env(("OMPI_COMM_WORLD_SIZE", "4"))), Is.EqualTo("OMPI_COMM_WORLD_SIZE=4"));
        Assert.That(Collective.LaunchedBy(Env(("PMIX_RANK", "0"))), Is.EqualTo("PMIX_RANK=0"));
        Assert.That(Collective.LaunchedBy(Env(("OMPI_COMM_WORLD_SIZE", ""))), Is.Null);
    }

    [Test]
    public void MissingOpenMpiLibraryIsAClearError()
    {
        var e = Assert.Throws<MpiException>(() => Collective.FromEnvironment(
            Env(("OMPI_COMM_WORLD_SIZE", "2"), (Collective.LibraryVariable, "/nonexistent/libmpi.so.40"))));
        Assert.That(e!.Message, Does.Contain("/nonexistent/libmpi.so.40").And.Contain("apt-get install").And.Contain(Collective.LibraryVariable));
    }

    [Test]
    public void ALibraryThatIsNotOpenMpiIsRefused()
    {
        var e = Assert.Throws<MpiException>(() => Collective.FromEnvironment(
            Env(("OMPI_COMM_WORLD_SIZE", "2"), (Collective.LibraryVariable, "libc.so.6"))));
        Assert.That(e!.Message, Does.Contain("is not Open MPI's libmpi").And.Contain("ompi_mpi_comm_world"));
    }

    [Test]
    public void MissingMpiThroughTheCliExitsWithOneLine()
    {
        var psi = new ProcessStartInfo(MpiRunner.Sdd[0]) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in (string[])[MpiRunner.Sdd[1], "train", "--device", "cpu", "--steps", "1", "--quiet"])
            psi.ArgumentList.Add(a);
        psi.Environment["OMPI_COMM_WORLD_SIZE"] = "2";
        psi.Environment[Collective.LibraryVariable] = "/nonexistent/libmpi.so.40";
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.That(p.ExitCode, Is.EqualTo(1));
        Assert.That(err.Trim().Split('\n'), Has.Length.EqualTo(1));
        Assert.That(err, Does.StartWith("sdd: ").And.Contain("could not be loaded"));
    }

    sealed class FakeRank(int localRank) : ICollective
    {
        public int Rank => localRank;
        public int Size => 4;
        public int LocalRank => localRank;
        public void AllReduceSum(Span<float> values) => throw new NotSupportedException();
        public void AllReduceSum(Span<double> values) => throw new NotSupportedException();
        public void Broadcast(Span<byte> data, int root = 0) => throw new NotSupportedException();
        public void Barrier() => throw new NotSupportedException();
        public void Abort(int exitCode) => throw new NotSupportedException();
        public void Dispose()
        {
        }
    }

    [Test]
    public void EachRankTakesTheDeviceOfItsLocalRank()
    {
        Assert.That(Collective.DeviceName("cuda", new FakeRank(1)), Is.EqualTo("cuda:1"));
        Assert.That(Collective.DeviceName("opencl", new FakeRank(3)), Is.EqualTo("opencl:3"));
        Assert.That(Collective.DeviceName("cuda:0", new FakeRank(2)), Is.EqualTo("cuda:0"));
        Assert.That(Collective.DeviceName("cpu", new FakeRank(2)), Is.EqualTo("cpu"));
        Assert.That(Collective.DeviceName("cuda", SingleProcess.Instance), Is.EqualTo("cuda"));
    }
}

/// <summary>The trainer's collective logic, in one process with a stand-in for the other rank.</summary>
public sealed class TrainerCollectiveTests
{
    /// <summary>Rank 0 of 2 whose twin computes exactly what it does; its broadcast can be made to lie.</summary>
    sealed class TwinRanks(bool corruptBroadcast) : ICollective
    {
        public int Rank => 0;
        public int Size => 2;
        public int LocalRank => 0;
        public int AllReduces { get; private set; }

        public void AllReduceSum(Span<float> values)
        {
            AllReduces++;
            foreach (ref var v in values)
                v *= 2;
        }

        public void AllReduceSum(Span<double> values)
        {
            foreach (ref var v in values)
                v *= 2;
        }

        public void Broadcast(Span<byte> data, int root = 0)
        {
            if (corruptBroadcast)
                data[0] ^= 1;
        }

        public void Barrier()
        {
        }

        public void Abort(int exitCode) => throw new NotSupportedException();

        public void Dispose()
        {
        }
    }

    static (SddIlgpu.Training.Trainer Trainer, string Dir) Make(ICollective world, int steps, string device = "cpu")
    {
        var corpus = SddIlgpu.Training.Data.TextCorpus.FromText(SddIlgpu.Training.Data.GeneratedCorpus.Generate(20_000), "fables", "char");
        var model = new ModelConfig(corpus.Tokenizer.VocabSize, DModel: 16, NLayer: 1, NHead: 2, NKvHead: 2, FfnHidden: 24, SeqLen: 8, Residual: Residual.Post, Linear: LinearKind.SddCode);
        var train = new SddIlgpu.Training.TrainConfig { Steps = steps, Batch = 2, GradAccum = 2, EvalEvery = 0, EvalBatches = 2, Warmup = 1 };
        var dir = Directory.CreateTempSubdirectory("sdd-twin-").FullName;
        var t = SddIlgpu.Training.Trainer.Create(TestDevices.Get(device), model, train, corpus, dir,
            new SddIlgpu.Training.TrainerOptions { Collective = world, WritePlot = false });
        return (t, dir);
    }

    [Test]
    public void ReplicasThatDisagreeStopTheRunBeforeACheckpoint()
    {
        var (t, dir) = Make(new TwinRanks(corruptBroadcast: true), steps: 2);
        try
        {
            var e = Assert.Throws<InvalidOperationException>(() => t.Run());
            Assert.That(e!.Message, Does.Contain("differ from rank 0's after step 2"));
            Assert.That(File.Exists(t.CheckpointPath), Is.False);
        }
        finally
        {
            t.Dispose();
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>On cpu the gradient arena is reduced in place in host memory; on OpenCL it is staged through a host buffer.</summary>
    [TestCase("cpu")]
    [TestCase("opencl")]
    public void EachStepIsOneGradientAllReducePlusTheLoss(string device)
    {
        var world = new TwinRanks(corruptBroadcast: false);
        var (t, dir) = Make(world, steps: 3, device);
        try
        {
            var result = t.Run();
            // Per step one allreduce of the gradient arena (not one per micro-batch) and one of the loss; one for the final evaluation.
            Assert.That(world.AllReduces, Is.EqualTo(3 * 2 + 1));
            Assert.That(result.Log.All(r => double.IsFinite(r.Loss)), Is.True);
        }
        finally
        {
            t.Dispose();
            Directory.Delete(dir, recursive: true);
        }
    }
}
