// All library JSON goes through System.Text.Json source generation (issue 10 §7): the test project turns
// reflection-based serialization off (JsonSerializerIsReflectionEnabledByDefault=false in the .csproj, as a
// trimmed or file-based app has it), so any JsonSerializer call without a JsonTypeInfo fails here. These tests
// check that the switch is on and round-trip every JSON form the library writes.
using System.Text.Json;
using System.Text.Json.Nodes;
using NUnit.Framework;
using SddIlgpu.Layers;
using SddIlgpu.Training;
using SddIlgpu.Training.Bench;
using SddIlgpu.Training.Data;
using SddIlgpu.Training.Experiments;
using SddIlgpu.Training.Metrics;

namespace SddIlgpu.Tests.Training;

public sealed class JsonSourceGenerationTests
{
    sealed record Probe(int Value);

    [Test]
    public void ReflectionBasedSerializationIsOffInTheTests()
    {
        Assert.That(JsonSerializer.IsReflectionEnabledByDefault, Is.False, "the test project's runtimeconfig switch");
        Assert.Throws<InvalidOperationException>(() => JsonSerializer.Serialize(new Probe(1)), "a call without a JsonTypeInfo fails");
    }

    [Test]
    public void ModelConfigRoundTripsWithExactFloats()
    {
        var c = new ModelConfig(53, 48, 3, 6, 2, 80, 10, Residual.DeepNorm, LinearKind.SddPaper, NormEps: 1e-6f, RopeTheta: 500000, InitStd: 0.02);
        var json = c.ToJson();
        Assert.That(json, Is.EqualTo("""{"vocab":53,"d_model":48,"n_layer":3,"n_head":6,"n_kv_head":2,"ffn_hidden":80,"seq_len":10,"residual":"deepnorm","linear":"sdd-paper","norm_eps":1E-06,"rope_theta":500000,"head_dim":8,"init_std":0.02}"""));
        Assert.That(ModelConfig.FromJson(json), Is.EqualTo(c));
        Assert.That(ModelConfig.FromJson((c with { InitStd = 0 }).ToJson()), Is.EqualTo(c with { InitStd = 0 }), "init_std left out when 0");
    }

    [Test]
    public void TrainConfigRoundTripsWithSnakeCaseKeys()
    {
        var t = TrainConfig.ForPreset("tiny") with { Seed = ulong.MaxValue, Lr = 1.0 / 3 };
        var json = t.ToJson();
        Assert.That(json, Does.Contain("\"sample_every\":500").And.Contain("\"grad_accum\":1").And.Contain("\"seed\":18446744073709551615")
            .And.Contain("\"decay_norm_gains\":true").And.Not.Contain("\"Steps\""));
        Assert.That(TrainConfig.FromJson(json), Is.EqualTo(t));
        Assert.That(() => TrainConfig.FromJson("""{"Steps":5}"""), Throws.ArgumentException.With.Message.Contains("'Steps'"), "unknown (PascalCase) keys are refused");
    }

    [Test]
    public void LogRecordsRoundTripWithNonFiniteNumbersAndNullsLeftOut()
    {
        var r = new StepRecord { Step = 4, Loss = 1.25, ValLoss = double.NaN, Lr = 1e-3, GradNorm = double.PositiveInfinity, LayerGradNorms = new() { ["a"] = 0.5 } };
        var json = r.ToJson();
        Assert.That(json, Is.EqualTo("""{"step":4,"loss":1.25,"val_loss":"NaN","lr":0.001,"grad_norm":"Infinity","tokens_per_s":0,"elapsed_s":0,"layer_grad_norms":{"a":0.5}}"""));
        var back = StepRecord.FromJson(json);
        Assert.That((back.Step, back.ValLoss, back.GradNorm, back.LayerGradNorms!["a"], back.Sample), Is.EqualTo((4, double.NaN, double.PositiveInfinity, 0.5, (string?)null)));
    }

    [Test]
    public void BenchRecordsAndTokenizersRoundTrip()
    {
        BenchRecord[] records = [new("gemm/256", "cpu", "throughput", 1.5e9, "FLOP/s")];
        var json = BenchJson.Serialize(records);
        Assert.That(JsonNode.Parse(json)![0]!["name"]!.GetValue<string>(), Is.EqualTo("gemm/256"));
        Assert.That(BenchJson.Deserialize(json), Is.EqualTo(records));

        var chars = CharTokenizer.FromCorpus("\nab😀");
        Assert.That(chars.ToJson(), Does.StartWith("""{"kind":"char","code_points":[10,97,98,128512]"""));
        foreach (var t in new ITokenizer[] { chars, new ByteTokenizer(), new Gpt2Tokenizer() })
            Assert.That(Tokenizers.FromJson(t.ToJson()).ToJson(), Is.EqualTo(t.ToJson()), t.Kind);
    }

    [Test]
    public void ExperimentReportsAreWrittenWithoutReflection()
    {
        var dir = Directory.CreateTempSubdirectory("sdd-json-").FullName;
        try
        {
            var json = ExperimentKit.Configuration(ModelConfig.Preset("tiny", 65, Residual.Post, LinearKind.SddCode), TrainConfig.ForPreset("tiny"));
            json["loss"] = ExperimentKit.Number(1.5);
            var (_, path) = ExperimentKit.WriteReport(dir, "probe", "# probe\n", json);
            var back = JsonNode.Parse(File.ReadAllText(path))!;
            Assert.That(back["model"]!["d_model"]!.GetValue<int>(), Is.EqualTo(64));
            Assert.That(back["train"]!["steps"]!.GetValue<int>(), Is.EqualTo(1000));
            Assert.That(back["loss"]!.GetValue<double>(), Is.EqualTo(1.5));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
