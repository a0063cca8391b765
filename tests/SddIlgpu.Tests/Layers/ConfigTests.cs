// Model configuration: presets, the FFN width rule, Validate's messages, JSON round trip and the
// parameter table (names, shapes, kinds, decay groups) against the reference fixtures' param_kinds.
using System.Text.Json;
using NUnit.Framework;
using SddIlgpu.Layers;
using SddIlgpu.Tests.Support;

namespace SddIlgpu.Tests.Layers;

public sealed class ConfigTests
{
    [TestCase(128, 344)]
    [TestCase(64, 176)]
    [TestCase(384, 1024)]
    [TestCase(32, 88)]
    public void DefaultFfnHiddenIsEightThirdsRoundedUpToEight(int c, int f)
    {
        Assert.That(ModelConfig.DefaultFfnHidden(c), Is.EqualTo(f));
        Assert.That(f % 8, Is.Zero);
        Assert.That(f, Is.GreaterThanOrEqualTo(8.0 * c / 3));
    }

    [TestCase("tiny", 2, 4, 64, 64)]
    [TestCase("shakespeare-cpu", 4, 4, 128, 64)]
    [TestCase("baby-gpt", 6, 6, 384, 256)]
    public void PresetsHaveTheirSizes(string name, int l, int nh, int c, int t)
    {
        foreach (var r in Enum.GetValues<Residual>())
            foreach (var lin in Enum.GetValues<LinearKind>())
            {
                var cfg = ModelConfig.Preset(name, 65, r, lin);
                Assert.That((cfg.NLayer, cfg.NHead, cfg.DModel, cfg.SeqLen, cfg.NKvHead), Is.EqualTo((l, nh, c, t, nh)));
                Assert.That((cfg.Residual, cfg.Linear, cfg.Vocab), Is.EqualTo((r, lin, 65)));
                Assert.That(cfg.FfnHidden, Is.EqualTo(ModelConfig.DefaultFfnHidden(c)));
                Assert.DoesNotThrow(cfg.Validate);
            }
    }

    [Test]
    public void UnknownPresetListsThePresets()
    {
        var e = Assert.Throws<ArgumentException>(() => ModelConfig.Preset("huge", 65, Residual.Post, LinearKind.SddCode))!;
        Assert.That(e.Message, Does.Contain("huge").And.Contain("tiny").And.Contain("shakespeare-cpu").And.Contain("baby-gpt"));
    }

    static readonly ModelConfig Good = new(67, 32, 2, 4, 4, 48, 12, Residual.Post, LinearKind.SddCode);

    [Test]
    public void ValidateNamesTheBrokenRule()
    {
        Assert.DoesNotThrow(Good.Validate);
        Assert.That(Assert.Throws<ArgumentException>((Good with { NHead = 5 }).Validate)!.Message, Does.Contain("divisible by n_head"));
        Assert.That(Assert.Throws<ArgumentException>((Good with { NKvHead = 3 }).Validate)!.Message, Does.Contain("divisible by n_kv_head"));
        Assert.That(Assert.Throws<ArgumentException>((Good with { DModel = 36, NHead = 4 }).Validate)!.Message, Does.Contain("even"));
        Assert.That(Assert.Throws<ArgumentException>((Good with { Vocab = 0 }).Validate)!.Message, Does.Contain("vocab must be positive"));
        Assert.That(Assert.Throws<ArgumentException>((Good with { SeqLen = -1 }).Validate)!.Message, Does.Contain("seq_len"));
    }

    [Test]
    public void ParsersAcceptTheCliNamesAndRejectOthers()
    {
        Assert.That(ModelConfig.ParseResidual("deepnorm"), Is.EqualTo(Residual.DeepNorm));
        Assert.That(ModelConfig.ParseLinear("sdd-paper"), Is.EqualTo(LinearKind.SddPaper));
        Assert.That(Assert.Throws<ArgumentException>(() => ModelConfig.ParseLinear("sdd"))!.Message, Does.Contain("plain, sdd-code, sdd-paper"));
        Assert.That(Assert.Throws<ArgumentException>(() => ModelConfig.ParseResidual("mid"))!.Message, Does.Contain("pre, post, deepnorm"));
    }

    [Test]
    public void JsonRoundTripsAndReadsTheReferenceForm()
    {
        var c = Good with { NKvHead = 2, InitStd = 0.05, Residual = Residual.DeepNorm, Linear = LinearKind.SddPaper };
        Assert.That(ModelConfig.FromJson(c.ToJson()), Is.EqualTo(c));
        var reference = """{"vocab": 53, "d_model": 48, "n_layer": 3, "n_head": 6, "n_kv_head": 2, "ffn_hidden": 80, "seq_len": 10, "residual": "pre", "linear": "sdd-code", "norm_eps": 1e-05, "rope_theta": 10000.0, "head_dim": 8}""";
        Assert.That(ModelConfig.FromJson(reference), Is.EqualTo(new ModelConfig(53, 48, 3, 6, 2, 80, 10, Residual.Pre, LinearKind.SddCode)));
        Assert.That(Assert.Throws<ArgumentException>(() => ModelConfig.FromJson("""{"vocab": 5}"""))!.Message, Does.Contain("lacks 'd_model'"));
        Assert.That(Assert.Throws<ArgumentException>(() => ModelConfig.FromJson(reference.Replace("\"vocab\"", "\"vocabulary\"")))!.Message,
            Does.Contain("Unknown model config key 'vocabulary'"));
    }

    public static IEnumerable<string> Fixtures() =>
        Directory.EnumerateFiles(SharedPaths.Golden, "*.safetensors").Order(StringComparer.Ordinal);

    [TestCaseSource(nameof(Fixtures))]
    public void ParameterTableMatchesTheFixtureNamesShapesAndKinds(string path)
    {
        var file = Safetensors.Read(path);
        var config = ModelConfig.FromJson(file.Metadata["config"]);
        var kinds = JsonSerializer.Deserialize(file.Metadata["param_kinds"], TestJson.Default.DictionaryStringString)!;
        var layout = ModelWeights.Layout(config);
        Assert.That(layout.Select(p => p.Name), Is.EquivalentTo(kinds.Keys));
        Assert.That(layout.Select(p => p.Name), Is.EqualTo(kinds.Keys), "spec §4 order (the reference's param_shapes order)");
        foreach (var (name, shape, kind) in layout)
        {
            Assert.That(file.Tensors["param." + name].Shape, Is.EqualTo(shape), name);
            var expected = kinds[name] switch
            {
                "matrix" => ParamKind.Matrix, "embedding" => ParamKind.Embedding, "gain" => ParamKind.Gain,
                "alpha" => ParamKind.Alpha, "alpha_out" => ParamKind.AlphaOut, var k => throw new InvalidDataException(k),
            };
            Assert.That(kind, Is.EqualTo(expected), name);
        }
    }

    [Test]
    public void DecayGroupsFollowSpecSix()
    {
        Assert.That(new[] { ParamKind.Matrix, ParamKind.Embedding, ParamKind.Gain, ParamKind.Alpha, ParamKind.AlphaOut }
            .Select(k => (Decays(k, true), Decays(k, false))),
            Is.EqualTo(new[] { (true, true), (false, false), (true, false), (true, false), (true, false) }));
    }

    static bool Decays(ParamKind kind, bool gains)
    {
        var device = TestDevices.Get("ilgpu-cpu");
        using var arena = device.Allocate(2, "p");
        return new Parameter("p", kind, arena.Take(1), arena.Take(1)).Decays(gains);
    }
}
