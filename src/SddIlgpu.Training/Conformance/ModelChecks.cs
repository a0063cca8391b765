// Whole-model conformance: one ForwardLoss + Backward + AdamW sequence per residual × linear variant.
// With golden fixtures (spec §7, written by the float64 PyTorch reference) the step is compared with them;
// without, the device is compared with a second, independent implementation (another device's op set).
using System.Text.Json;
using SddIlgpu.Layers;
using SddIlgpu.Tensors;
using static SddIlgpu.Training.Conformance.ErrorMeasure;

namespace SddIlgpu.Training.Conformance;

public static class ModelChecks
{
    /// <summary>Tolerances of spec §7: logits/loss 1e-4, gradients 1e-3 (norm-wise), AdamW losses and weights 1e-3.</summary>
    const double LogitsTol = 1e-4, GradTol = 1e-3, StepTol = 1e-3;

    /// <summary>A small model that fills no tile: V 37, C 24, L 2, NH 4, KVH 2 (GQA), F 40, T 11; batch 2.</summary>
    public static ModelConfig SmallConfig(Residual residual, LinearKind linear) => new(37, 24, 2, 4, 2, 40, 11, residual, linear);

    /// <summary>One fixture per file of <paramref name="goldenDir"/>: logits, loss, every gradient, AdamW losses and weights after the steps.</summary>
    public static IEnumerable<CheckResult> Golden(Device device, string goldenDir)
    {
        var files = Directory.GetFiles(goldenDir, "*.safetensors").Order(StringComparer.Ordinal).ToArray();
        if (files.Length == 0)
            throw new FileNotFoundException($"No *.safetensors golden fixtures in {goldenDir}.");
        foreach (var path in files)
        {
            foreach (var r in GoldenOne(device, "golden " + Path.GetFileNameWithoutExtension(path), path))
                yield return r;
        }
    }

    static List<CheckResult> GoldenOne(Device device, string name, string path)
    {
        var results = new List<CheckResult>();
        try
        {
            var file = Safetensors.Read(path);
            var config = ModelConfig.FromJson(file.Metadata["config"]);
            var batch = int.Parse(file.Metadata["batch"], System.Globalization.CultureInfo.InvariantCulture);
            using var weights = new ModelWeights(device, config);
            using var model = new Model(weights, batch);
            Safetensors.Load(weights, file, "param.");
            model.Upload(file.Tensors["input.tokens"].Data, file.Tensors["input.targets"].Data);
            var run = Run(model, null, 1);
            var loss = double.Parse(file.Metadata["loss"], System.Globalization.CultureInfo.InvariantCulture);
            results.Add(new(name + " logits+loss", Math.Max(NormRelative(run.Logits, file.Tensors["expected.logits"].Data), Math.Abs(run.Losses[0] - loss) / loss), LogitsTol));
            results.Add(new(name + " gradients", weights.Parameters.Max(p => NormRelative(Slice(run.Grads, p.Grad), file.Tensors["grad." + p.Name].Data)), GradTol, "worst parameter, norm-wise"));

            using var adamJson = JsonDocument.Parse(file.Metadata["adamw"]);
            var a = adamJson.RootElement;
            float F(string k) => (float)a.GetProperty(k).GetDouble();
            var steps = int.Parse(file.Metadata["adamw_steps"], System.Globalization.CultureInfo.InvariantCulture);
            var expectedLosses = JsonSerializer.Deserialize<double[]>(file.Metadata["adamw_losses"])!;
            Safetensors.Load(weights, file, "param.");
            using var optimizer = new AdamW(weights, new AdamWConfig(F("lr"), F("weight_decay"), F("beta1"), F("beta2"), F("adam_eps"), F("grad_clip"), a.GetProperty("decay_norm_gains").GetBoolean()));
            var stepped = Run(model, optimizer, steps);
            var lossErr = expectedLosses.Select((e, i) => Math.Abs(stepped.Losses[i] - e) / Math.Abs(e)).Max();
            results.Add(new(name + $" adamw x{steps}", Math.Max(lossErr, weights.Parameters.Max(p => NormRelative(Slice(stepped.Values, p.Value), file.Tensors["after_steps." + p.Name].Data))), StepTol, "losses and weights"));
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            results.Add(CheckResult.Failed(name, LogitsTol, e));
        }
        return results;
    }

    /// <summary>
    /// Every residual × linear variant of <see cref="SmallConfig"/> from the same seeded weights and batch on
    /// <paramref name="device"/> and on <paramref name="reference"/>: logits and loss, gradients, and the
    /// losses of 3 AdamW steps plus the weights after them.
    /// </summary>
    public static IEnumerable<CheckResult> CrossDevice(Device device, Device reference)
    {
        foreach (var residual in Enum.GetValues<Residual>())
            foreach (var linear in Enum.GetValues<LinearKind>())
            {
                var config = SmallConfig(residual, linear);
                var name = $"model {ModelConfig.Name(residual)}/{ModelConfig.Name(linear)}";
                var results = new List<CheckResult>();
                try
                {
                    var got = SeededRun(device, config);
                    var want = SeededRun(reference, config);
                    var note = $"vs {reference.Name}";
                    results.Add(new(name + " logits+loss", Math.Max(NormRelative(got.First.Logits, want.First.Logits), RelDiff(got.First.Losses[0], want.First.Losses[0])), LogitsTol, note));
                    results.Add(new(name + " gradients", NormRelative(got.First.Grads, want.First.Grads), GradTol, note));
                    results.Add(new(name + " adamw x3", Math.Max(got.Steps.Losses.Zip(want.Steps.Losses, RelDiff).Max(), NormRelative(got.Steps.Values, want.Steps.Values)), StepTol, note));
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    results.Add(CheckResult.Failed(name, LogitsTol, e));
                }
                foreach (var r in results)
                    yield return r;
            }
    }

    static double RelDiff(double a, double e) => Math.Abs(a - e) / Math.Max(Math.Abs(e), 1e-30);

    static (RunResult First, RunResult Steps) SeededRun(Device device, ModelConfig config)
    {
        const int Batch = 2;
        using var weights = new ModelWeights(device, config);
        using var model = new Model(weights, Batch);
        var tokens = new float[Batch * config.SeqLen];
        var targets = new float[tokens.Length];
        for (var i = 0; i < tokens.Length; i++)
        {
            tokens[i] = (i * 7 + 3) % config.Vocab;
            targets[i] = (i * 11 + 5) % config.Vocab;
        }
        model.Upload(tokens, targets);
        weights.Initialize(1234);
        var first = Run(model, null, 1);
        using var optimizer = new AdamW(weights, new AdamWConfig(Lr: 1e-2f));
        return (first, Run(model, optimizer, 3));
    }

    sealed record RunResult(float[] Logits, double[] Losses, float[] Grads, float[] Values);

    /// <summary>
    /// Without an optimizer: logits, loss and gradients of the current weights. With one: <paramref name="steps"/>
    /// steps (ZeroGrad, ForwardLoss, Backward, Step) at the configured lr, their losses and the final weights.
    /// </summary>
    static RunResult Run(Model model, AdamW? optimizer, int steps)
    {
        var weights = model.Weights;
        var gradScale = 1f / (model.Batch * model.Config.SeqLen);
        var logits = Array.Empty<float>();
        if (optimizer is null)
        {
            model.Forward();
            logits = model.Logits.ToArray();
        }
        var losses = new double[steps];
        for (var s = 0; s < steps; s++)
        {
            weights.ZeroGrad();
            model.ForwardLoss(gradScale);
            losses[s] = model.Loss.ToArray()[0];
            model.Backward();
            optimizer?.Step(optimizer.Config.Lr);
        }
        return new RunResult(logits, losses, weights.Grads.ToArray(), weights.Values.ToArray());
    }

    static float[] Slice(float[] all, Tensor t) => all.AsSpan((int)t.Offset, (int)t.Length).ToArray();
}
