// The whole model against PyTorch (spec §7): every fixture in ../shared/golden, found by listing the folder.
// Forward logits and loss, every parameter gradient, then the fixture's AdamW steps (losses, gradient norms,
// weights after the steps). Tolerances of spec §7: 1e-4 relative forward, 1e-3 norm-wise gradients and steps.
using System.Globalization;
using System.Text.Json;
using NUnit.Framework;
using SddIlgpu.Layers;
using SddIlgpu.Training;
using SddIlgpu.Tests.Support;

namespace SddIlgpu.Tests.Layers;

[TestFixtureSource(typeof(LayerDevices), nameof(LayerDevices.All))]
public sealed class GoldenTests(string deviceName)
{
    public static IEnumerable<TestCaseData> Fixtures() =>
        Directory.EnumerateFiles(SharedPaths.Golden, "*.safetensors").Order(StringComparer.Ordinal)
            .Select(p => new TestCaseData(Path.GetFileNameWithoutExtension(p)).SetName("{m}(" + Path.GetFileNameWithoutExtension(p) + ")"));

    static readonly Dictionary<string, SafetensorsFile> Cache = [];

    static SafetensorsFile Read(string name)
    {
        lock (Cache)
        {
            if (!Cache.TryGetValue(name, out var f))
                Cache[name] = f = Safetensors.Read(Path.Combine(SharedPaths.Golden, name + ".safetensors"));
            return f;
        }
    }

    static double[] D(float[] a) => a.Select(v => (double)v).ToArray();

    (ModelWeights, Model, SafetensorsFile) Build(string name)
    {
        var file = Read(name);
        var config = ModelConfig.FromJson(file.Metadata["config"]);
        var tokens = file.Tensors["input.tokens"];
        var weights = LayerDevices.Weights(deviceName, config);
        Safetensors.Load(weights, file, "param.");
        var model = new Model(weights, tokens.Shape[0]);
        model.Tokens.Upload(tokens.Data);
        model.Targets.Upload(file.Tensors["input.targets"].Data);
        return (weights, model, file);
    }

    static double Meta(SafetensorsFile f, string key) => double.Parse(f.Metadata[key], CultureInfo.InvariantCulture);

    [TestCaseSource(nameof(Fixtures))]
    public void ForwardMatchesLogits(string name)
    {
        var (weights, model, file) = Build(name);
        using var w = weights;
        using var m = model;
        m.Forward();
        var expected = D(file.Tensors["expected.logits"].Data);
        var scale = expected.Max(Math.Abs);
        Check.Close(m.Logits.ToArray(), expected, 1e-4 * scale, 1e-4, name + " logits");
    }

    /// <summary>
    /// The first step's forward and backward are checked against the fixture's loss and gradients before the
    /// step is taken (one pass serves both: the ilgpu-cpu device is slow per launch), then the remaining steps run.
    /// </summary>
    [TestCaseSource(nameof(Fixtures))]
    public void LossGradientsAndAdamWStepsMatch(string name)
    {
        var (weights, model, file) = Build(name);
        using var w = weights;
        using var m = model;
        using var hyper = JsonDocument.Parse(file.Metadata["adamw"]);
        float H(string k) => (float)hyper.RootElement.GetProperty(k).GetDouble();
        var config = new AdamWConfig(H("lr"), H("weight_decay"), H("beta1"), H("beta2"), H("adam_eps"), H("grad_clip"),
            hyper.RootElement.GetProperty("decay_norm_gains").GetBoolean());
        using var adam = new AdamW(w, config);
        var steps = (int)Meta(file, "adamw_steps");
        var expectedLosses = JsonSerializer.Deserialize(file.Metadata["adamw_losses"], TestJson.Default.DoubleArray)!;
        var expectedNorms = JsonSerializer.Deserialize(file.Metadata["adamw_grad_norms"], TestJson.Default.DoubleArray)!;
        var losses = new float[steps];
        var norms = new float[steps];
        for (var step = 0; step < steps; step++)
        {
            w.ZeroGrad();
            m.ForwardLoss(1f / (m.Batch * m.Config.SeqLen));
            m.Backward();
            losses[step] = m.Loss.ToArray()[0];
            if (step == 0)
            {
                Check.Close(losses.AsSpan(0, 1), [Meta(file, "loss")], 0, 1e-4, name + " loss");
                CompareNormWise(w, "grad.", p => p.Grad, file, 1e-3, name + " gradients");
            }
            adam.Step(config.Lr);
            norms[step] = MathF.Sqrt(adam.GradNormSquared.ToArray()[0]);
        }
        Check.Close(losses, expectedLosses, 0, 1e-3, name + " AdamW losses");
        Check.Close(norms, expectedNorms, 0, 1e-3, name + " AdamW gradient norms");
        CompareNormWise(w, "after_steps.", p => p.Value, file, 1e-3, $"{name} weights after {steps} AdamW steps");
    }

    static void CompareNormWise(ModelWeights w, string prefix, Func<Parameter, SddIlgpu.Tensors.Tensor> pick, SafetensorsFile file, double tolerance, string label)
    {
        var failures = new List<string>();
        foreach (var p in w.Parameters)
        {
            var err = Check.RelativeNormError(pick(p).ToArray(), D(file.Tensors[prefix + p.Name].Data));
            if (!(err <= tolerance))
                failures.Add($"{p.Name}: relative error {err:G3}");
        }
        Assert.That(failures, Is.Empty, $"{label} beyond {tolerance} (norm-wise)");
    }
}
