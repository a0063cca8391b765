// sample, eval, plot, doctor, bench and experiment: every option each accepts is honoured (changing it changes the
// output, or its effect is observable), with a guard per command that fails when an option is added without a case.
using System.CommandLine;
using System.Text.Json.Nodes;
using NUnit.Framework;
using SddIlgpu.Cli;
using SddIlgpu.Tests.Support;

namespace SddIlgpu.Tests.Cli;

[TestFixture]
public sealed class CommandOptionsTests
{
    string dir = null!, run = null!, data = null!;

    [OneTimeSetUp]
    public void TrainOnce()
    {
        dir = Directory.CreateTempSubdirectory("sdd-cmd-opts-").FullName;
        run = Path.Combine(dir, "run");
        data = Path.Combine(dir, "data.txt");
        File.WriteAllText(data, CliTestKit.Corpus(3));
        var r = CliRunner.Run("train", "--device", "cpu", "--data", data, "--cache-dir", Path.Combine(dir, "cache"), "--d-model", "16", "--n-layer", "1",
            "--n-head", "2", "--seq-len", "8", "--batch", "2", "--steps", "20", "--lr", "0.01", "--warmup", "0", "--quiet", "--out", run);
        Assert.That(r.Code, Is.Zero, r.Err);
    }

    [OneTimeTearDown]
    public void RemoveDir() => Directory.Delete(dir, recursive: true);

    static void Covers(Command command, IEnumerable<string> covered) =>
        Assert.That(CliTestKit.OptionNames(command).Except(covered), Is.Empty, $"an option of sdd {command.Name} has no test that it is honoured");

    static string Ok(params string[] args)
    {
        var r = CliRunner.Run(args);
        CliTestKit.NoStackTrace(r);
        Assert.That(r.Code, Is.Zero, $"sdd {string.Join(" ", args)}: {r.Err}");
        return r.Out;
    }

    static readonly string[][] SampleChanges =
        [["--prompt", "fox "], ["--tokens", "25"], ["--temperature", "2"], ["--top-k", "1"], ["--seed", "2"]];

    [Test]
    public void SampleHonoursEachOption()
    {
        string[] baseArgs = ["sample", run, "--device", "cpu", "--tokens", "40", "--prompt", "the "];
        var baseline = Ok(baseArgs);
        Assert.That(Ok(baseArgs), Is.EqualTo(baseline), "same options, same text");
        foreach (var change in SampleChanges)
        {
            var args = baseArgs.ToList();
            var at = args.IndexOf(change[0]);
            if (at >= 0)
                args.RemoveRange(at, 2);
            Assert.That(Ok([.. args, .. change]), Is.Not.EqualTo(baseline), $"{change[0]} {change[1]} changed nothing");
        }
        Assert.That(Ok(baseArgs).TrimEnd('\n').Length, Is.EqualTo(4 + 40), "--tokens 40 after the 4-character prompt (char tokenizer)");
        var tpu = CliRunner.Run("sample", run, "--device", "tpu");
        Assert.That((tpu.Code, tpu.Err.Contains("Unknown device 'tpu'", StringComparison.Ordinal)), Is.EqualTo((1, true)), "--device is read");
        Covers(SampleCommands.CreateSample(), [.. SampleChanges.Select(c => c[0]), "--device"]);
    }

    [Test]
    public void EvalHonoursEachOption()
    {
        // --batches and --data are asserted with values in ValidationTests; here: each changes the loss, --device is read.
        var baseline = Ok("eval", run, "--device", "cpu");
        Assert.That(Ok("eval", run, "--device", "cpu", "--batches", "1"), Is.Not.EqualTo(baseline));
        var other = Path.Combine(dir, "other.txt");
        File.WriteAllText(other, CliTestKit.Corpus(4));
        Assert.That(Ok("eval", run, "--device", "cpu", "--data", other), Is.Not.EqualTo(baseline));
        Assert.That(CliRunner.Run("eval", run, "--device", "tpu").Err, Does.Contain("Unknown device 'tpu'"));
        Covers(SampleCommands.CreateEval(), ["--batches", "--data", "--device"]);
    }

    [Test]
    public void PlotWritesWhereOutSays()
    {
        var png = Path.Combine(dir, "elsewhere", "mine.png");
        Directory.CreateDirectory(Path.GetDirectoryName(png)!);
        File.Delete(Path.Combine(run, "loss.png"));
        Assert.That(Ok("plot", run, "--out", png), Does.Contain(png));
        Assert.That(File.Exists(png) && new FileInfo(png).Length > 0);
        Assert.That(File.Exists(Path.Combine(run, "loss.png")), Is.False, "--out replaced the default");
        Ok("plot", Path.Combine(run, "log.jsonl"));
        Assert.That(File.Exists(Path.Combine(run, "loss.png")), "the default is beside the log");
        Covers(SampleCommands.CreatePlot(), ["--out"]);
    }

    [Test]
    public void DoctorHonoursEachOption()
    {
        static string[] Rows(string output, string prefix) =>
            [.. output.Split('\n').Where(l => l.StartsWith(prefix, StringComparison.Ordinal))];
        string Doctor(params string[] args)
        {
            var output = new StringWriter();
            Assert.That(DoctorCommand.Run(args, output, null), Is.Zero, output.ToString());
            return output.ToString();
        }
        var opsOnly = Doctor("--device", "cpu", "--ops-only");
        Assert.That(opsOnly, Does.StartWith("device     cpu"));
        Assert.That(Rows(opsOnly, "model ").Concat(Rows(opsOnly, "golden ")), Is.Empty, "--ops-only skips the model checks");
        var crossCpu = Doctor("--device", "cpu", "--reference", "cpu");
        Assert.That(Rows(crossCpu, "model "), Is.Not.Empty.And.All.Contains("vs cpu"), "--reference names the device compared with");
        Assert.That(Rows(crossCpu, "golden "), Is.Empty);
        var golden = Doctor("--device", "cpu", "--golden", SharedPaths.Golden);
        Assert.That(Rows(golden, "golden "), Is.Not.Empty);
        Assert.That(Rows(golden, "model "), Is.Empty);
        Assert.Throws<UsageException>(() => DoctorCommand.Run(["--golden", SharedPaths.Golden, "--reference", "cpu"], TextWriter.Null, null));
        Assert.Throws<UsageException>(() => DoctorCommand.Run(["--ops-only", "--golden", SharedPaths.Golden], TextWriter.Null, null));
        Covers(DoctorCommand.Create(), ["--device", "--ops-only", "--reference", "--golden"]);
    }

    [Test]
    public void BenchPeakTflopsIsTheMfuDenominator()
    {
        // --quick, --presets, --json and --device are asserted by BenchTests.QuickCpuRunWritesTrainStepThroughput.
        var output = new StringWriter();
        Assert.That(BenchCommand.Run(["--device", "cpu", "--quick", "--presets", "tiny", "--peak-tflops", "2.5"], output), Is.Zero);
        Assert.That(output.ToString(), Does.Contain("FP32 peak 2.50 TFLOPS"));
        Covers(BenchCommand.Create(), ["--device", "--quick", "--presets", "--json", "--peak-tflops"]);
    }

    static readonly string[][] GradientDepthChanges = [["--width", "24"], ["--rows", "8"], ["--depths", "1,3"], ["--trials", "2"], ["--seed", "5"]];

    [Test]
    public void GradientDepthHonoursEachOption()
    {
        string Json(string name, params string[] change)
        {
            var outDir = Path.Combine(dir, "gd-" + name);
            var args = new Dictionary<string, string> { ["--width"] = "16", ["--rows"] = "4", ["--depths"] = "1,2", ["--trials"] = "1", ["--out"] = outDir };
            if (change.Length == 2)
                args[change[0]] = change[1];
            Ok(["experiment", "gradient-depth", "--quiet", .. args.SelectMany(kv => new[] { kv.Key, kv.Value })]);
            var o = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "gradient-depth.json")))!;
            return o.ToJsonString();
        }
        var baseline = Json("base");
        foreach (var c in GradientDepthChanges)
            Assert.That(Json(c[0].TrimStart('-'), c), Is.Not.EqualTo(baseline), $"{c[0]} {c[1]} changed nothing");
        var loud = CliRunner.Run("experiment", "gradient-depth", "--width", "16", "--rows", "4", "--depths", "1", "--trials", "1", "--out", Path.Combine(dir, "gd-loud"));
        var quiet = CliRunner.Run("experiment", "gradient-depth", "--width", "16", "--rows", "4", "--depths", "1", "--trials", "1", "--out", Path.Combine(dir, "gd-quiet"), "--quiet");
        Assert.That(loud.Out, Does.Contain("experiment gradient-depth on cpu").And.Contain("|"), "--device cpu is the default and named");
        Assert.That(quiet.Out, Does.Not.Contain("experiment gradient-depth on").And.Contain("wrote "));
        Assert.That(CliRunner.Run("experiment", "gradient-depth", "--device", "tpu").Err, Does.Contain("Unknown device 'tpu'"));
        Covers(ExperimentCommand.Create().Subcommands.Single(c => c.Name == "gradient-depth"),
            [.. GradientDepthChanges.Select(c => c[0]), "--out", "--quiet", "--device"]);
    }

    /// <summary>One tiny run of a training experiment with every option changed; its JSON shows each value.</summary>
    JsonNode TrainingExperiment(string name, params string[] own)
    {
        var outDir = Path.Combine(dir, name);
        Ok(["experiment", name, "--device", "cpu", "--quiet", "--out", outDir, "--data", data, "--steps", "3", "--d-model", "16",
            "--seq-len", "8", "--batch", "2", "--lr", "0.004", "--seed", "11", .. own]);
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, name + ".json")))!;
        var model = json["configuration"]!["model"]!;
        var train = json["configuration"]!["train"]!;
        Assert.That((int)model["d_model"]!, Is.EqualTo(16));
        Assert.That((int)model["seq_len"]!, Is.EqualTo(8));
        Assert.That((int)train["steps"]!, Is.EqualTo(3));
        Assert.That((int)train["batch"]!, Is.EqualTo(2));
        Assert.That((double)train["lr"]!, Is.EqualTo(0.004));
        Assert.That((ulong)train["seed"]!, Is.EqualTo(11UL));
        Assert.That((string)json["data"]!, Does.StartWith("data.txt, char tokenizer"));
        return json;
    }

    static readonly string[] TrainingCommon = ["--device", "--quiet", "--out", "--data", "--steps", "--d-model", "--seq-len", "--batch", "--lr", "--seed"];

    static Command Experiment(string name) => ExperimentCommand.Create().Subcommands.Single(c => c.Name == name);

    [Test]
    public void GradProfileHonoursEachOption()
    {
        var json = TrainingExperiment("grad-profile", "--n-layer", "3", "--variants", "sdd", "--final-window", "2");
        Assert.That((int)json["configuration"]!["model"]!["n_layer"]!, Is.EqualTo(3));
        Assert.That(json["variants"]!.AsArray().Select(v => (string)v!), Has.Exactly(1).Items);
        Assert.That((int)json["final_window"]!, Is.EqualTo(2));
        Covers(Experiment("grad-profile"), [.. TrainingCommon, "--n-layer", "--variants", "--final-window"]);
    }

    [Test]
    public void RobustnessHonoursEachOption()
    {
        var json = TrainingExperiment("robustness", "--n-layer", "2", "--variants", "sdd", "--warmup", "1", "--lr-mult", "3", "--init-mult", "0.5");
        Assert.That((int)json["configuration"]!["model"]!["n_layer"]!, Is.EqualTo(2));
        Assert.That((int)json["configuration"]!["train"]!["warmup"]!, Is.EqualTo(1));
        Assert.That((double)json["lr_multiplier"]!, Is.EqualTo(3));
        Assert.That((double)json["init_multiplier"]!, Is.EqualTo(0.5));
        Assert.That(json["cells"]!.AsArray().Select(c => (string)c!["variant"]!).Distinct().Count(), Is.EqualTo(1));
        Covers(Experiment("robustness"), [.. TrainingCommon, "--n-layer", "--variants", "--warmup", "--lr-mult", "--init-mult"]);
    }

    [Test]
    public void DepthScalingHonoursEachOption()
    {
        var json = TrainingExperiment("depth-scaling", "--depths", "1,2", "--variants", "pre");
        Assert.That(json["points"]!.AsArray().Select(p => (int)p!["depth"]!), Is.EquivalentTo(new[] { 1, 2 }));
        Assert.That(json["points"]!.AsArray().Select(p => (string)p!["variant"]!).Distinct().Count(), Is.EqualTo(1));
        Covers(Experiment("depth-scaling"), [.. TrainingCommon, "--depths", "--variants"]);
    }
}
