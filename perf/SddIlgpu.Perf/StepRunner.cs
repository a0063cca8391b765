// One training step of a preset as the CPU figures time it (char vocabulary 65, post-norm, sdd-code: the CLI
// defaults): fresh random tokens and targets, zeroed gradients, forward with cross-entropy, backward, AdamW with
// its clip, and the loss read back. Shared by `step`, `profile` and `step-ab`.
using SddIlgpu.Layers;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;
using SddIlgpu.Training;

namespace SddIlgpu.Perf;

internal sealed class StepRunner : IDisposable
{
    readonly ModelWeights weights;
    readonly Model model;
    readonly AdamW optimizer;
    readonly Random random = new(7);
    readonly float[] tokens, targets, loss = new float[1];

    /// <param name="ops">Ops in place of the device's (a timing proxy, a variant), or null.</param>
    public StepRunner(Device device, string preset, int batch, OpSet? ops)
    {
        Config = ModelConfig.Preset(preset, 65, Residual.Post, LinearKind.SddCode);
        weights = new ModelWeights(device, Config, ops);
        weights.Initialize(1337);
        model = new Model(weights, batch);
        optimizer = new AdamW(weights, new AdamWConfig());
        tokens = new float[batch * Config.SeqLen];
        targets = new float[tokens.Length];
    }

    public ModelConfig Config { get; }

    /// <summary>Tokens per step (B·T).</summary>
    public int Tokens => tokens.Length;

    /// <summary>The last step's mean loss.</summary>
    public float Loss => loss[0];

    public void Step()
    {
        for (var i = 0; i < tokens.Length; i++)
        {
            tokens[i] = random.Next(Config.Vocab);
            targets[i] = random.Next(Config.Vocab);
        }
        weights.ZeroGrad();
        model.Tokens.Upload(tokens);
        model.Targets.Upload(targets);
        model.ForwardLoss(1f / tokens.Length);
        model.Backward();
        optimizer.Step(1e-3f);
        model.Loss.Download(loss);
    }

    public void Dispose()
    {
        optimizer.Dispose();
        model.Dispose();
        weights.Dispose();
    }
}
