// `sdd bench`: the record format and its atomic JSON file, the FP32 peak table, flag validation, and one
// quick run on the CPU that produces a training-step throughput record with the documented name and unit.
using System.Text.Json;
using NUnit.Framework;
using SddIlgpu.Cli;
using SddIlgpu.Training.Bench;

namespace SddIlgpu.Tests.Cli;

[TestFixture]
public sealed class BenchTests
{
    [TestCase("NVIDIA H100 80GB HBM3", 67.0)]
    [TestCase("NVIDIA H100 PCIe", 51.2)]
    [TestCase("NVIDIA H200", 67.0)]
    [TestCase("NVIDIA A100-SXM4-80GB", 19.5)]
    [TestCase("NVIDIA GeForce RTX 4090", 82.6)]
    [TestCase("AMD Instinct MI250X", 47.9)]
    public void KnownDevicesHaveTheirFp32Peak(string name, double tflops) =>
        Assert.That(PeakFlops.Lookup(name), Is.EqualTo(tflops * 1e12).Within(1e6));

    [Test]
    public void UnknownDevicesHaveNoPeak() => Assert.That(PeakFlops.Lookup("Some Future GPU"), Is.Null);

    [Test]
    public void JsonIsAnArrayOfFiveFieldRecordsWrittenAtomically()
    {
        var dir = Directory.CreateTempSubdirectory("sdd-bench-").FullName;
        try
        {
            var path = Path.Combine(dir, "bench.json");
            File.WriteAllText(path, "old");
            BenchJson.Write(path, [new BenchRecord("train-step/tiny", "cpu (x)", "throughput", 1234.5, "tokens/s")]);
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            var r = doc.RootElement.EnumerateArray().Single();
            Assert.That(r.EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "name", "device", "metric", "value", "unit" }));
            Assert.That(r.GetProperty("value").GetDouble(), Is.EqualTo(1234.5));
            Assert.That(Directory.GetFiles(dir), Is.EqualTo(new[] { path }), "no temp file left behind");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Test]
    public void UnknownPresetIsAUsageError() =>
        Assert.Throws<UsageException>(() => BenchCommand.Run(["--presets", "tiny,huge"], TextWriter.Null));

    [Test]
    public void QuickCpuRunWritesTrainStepThroughput()
    {
        var path = Path.Combine(Path.GetTempPath(), $"sdd-bench-{Environment.ProcessId}.json");
        try
        {
            var output = new StringWriter();
            Assert.That(BenchCommand.Run(["--device", "cpu", "--quick", "--presets", "tiny", "--json", path], output), Is.Zero);
            TestContext.Out.WriteLine(output);
            var records = BenchJson.Deserialize(File.ReadAllText(path));
            var step = records.Single(r => r.Name == "train-step/tiny" && r.Metric == "throughput");
            Assert.That(step.Unit, Is.EqualTo("tokens/s"));
            Assert.That(step.Value, Is.GreaterThan(0));
            Assert.That(records.Where(r => r.Name.StartsWith("gemm/", StringComparison.Ordinal)), Is.Not.Empty, "GEMMs validated and timed");
            Assert.That(records, Has.Some.Matches<BenchRecord>(r => r.Name == "train-step/tiny" && r.Metric == "mfu" && r.Value is > 0 and < 100));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void WarmUpOutlastsTheLastCompiledMethodByTheQuietTime()
    {
        // For its first 0.2 s every run compiles a new method (a DynamicMethod, jitted on its first call), as tiered
        // compilation recompiles hot code during a benchmark's first calls: warm-up must end no sooner than 0.2 s + quiet.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var compiledRuns = 0;
        var runs = BenchTiming.WarmUp(() =>
        {
            if (clock.Elapsed.TotalSeconds >= 0.2)
                return;
            var method = new System.Reflection.Emit.DynamicMethod($"warm{compiledRuns}", typeof(int), [typeof(int)]);
            var il = method.GetILGenerator();
            il.Emit(System.Reflection.Emit.OpCodes.Ldarg_0);
            il.Emit(System.Reflection.Emit.OpCodes.Ldc_I4, compiledRuns);
            il.Emit(System.Reflection.Emit.OpCodes.Add);
            il.Emit(System.Reflection.Emit.OpCodes.Ret);
            Assert.That(((Func<int, int>)method.CreateDelegate(typeof(Func<int, int>)))(1), Is.EqualTo(1 + compiledRuns));
            compiledRuns++;
        }, minRuns: 3, quietSeconds: 0.15, maxSeconds: 5);
        Assert.That(compiledRuns, Is.GreaterThan(1));
        Assert.That(clock.Elapsed.TotalSeconds, Is.GreaterThanOrEqualTo(0.35));
        Assert.That(runs, Is.GreaterThan(compiledRuns));
    }

    [Test]
    public void WarmUpRunsAtLeastItsMinimumAndStopsAtItsLimit()
    {
        var quiet = 0;
        Assert.That(BenchTiming.WarmUp(() => quiet++, minRuns: 50, quietSeconds: 0.01, maxSeconds: 5), Is.EqualTo(quiet).And.GreaterThanOrEqualTo(50));
        // A body that never stops compiling ends at maxSeconds.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var n = 0;
        BenchTiming.WarmUp(() =>
        {
            var method = new System.Reflection.Emit.DynamicMethod($"forever{n++}", typeof(void), Type.EmptyTypes);
            method.GetILGenerator().Emit(System.Reflection.Emit.OpCodes.Ret);
            ((Action)method.CreateDelegate(typeof(Action)))();
            Thread.Sleep(1);
        }, minRuns: 1, quietSeconds: 0.05, maxSeconds: 0.3);
        Assert.That(clock.Elapsed.TotalSeconds, Is.InRange(0.3, 3));
    }
}

