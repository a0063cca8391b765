// The training step on the tiny preset: after the first step, forward + backward + AdamW allocate no device
// memory; Backward accumulates into the gradients; the loss of a fresh model is about ln V.
using NUnit.Framework;
using SddIlgpu.Layers;
using SddIlgpu.Training;
using SddIlgpu.Tests.Support;

namespace SddIlgpu.Tests.Layers;

[TestFixtureSource(typeof(LayerDevices), nameof(LayerDevices.All))]
public sealed class ModelStepTests(string deviceName)
{
    const int Vocab = 65, Batch = 2;

    static float[] Tokens(int n, int seed) => Enumerable.Range(0, n).Select(i => (float)((i * 7919 + seed * 31) % Vocab)).ToArray();

    [Test]
    public void TinyPresetStepAllocatesNothingAfterTheFirst()
    {
        var config = ModelConfig.Preset("tiny", Vocab, Residual.Post, LinearKind.SddCode);
        var (device, _) = LayerDevices.Get(deviceName);
        using var w = LayerDevices.Weights(deviceName, config);
        w.Initialize(3);
        using var model = new Model(w, Batch);
        using var adam = new AdamW(w, new AdamWConfig());
        model.Tokens.Upload(Tokens(Batch * config.SeqLen, 1));
        model.Targets.Upload(Tokens(Batch * config.SeqLen, 2));
        var losses = new float[2];
        long allocationsAfterFirst = 0;
        for (var step = 0; step < 2; step++)
        {
            w.ZeroGrad();
            model.ForwardLoss(1f / (Batch * config.SeqLen));
            model.Backward();
            adam.Step(1e-3f);
            losses[step] = model.Loss.ToArray()[0];
            if (step == 0)
                allocationsAfterFirst = device.Counters.Allocations;
        }
        Assert.That(device.Counters.Allocations, Is.EqualTo(allocationsAfterFirst), "device allocations during the second step");
        // near ln V; above it because the tied embedding favours the input token, which is not the target here
        Assert.That(losses[0], Is.InRange(Math.Log(Vocab) - 0.5, Math.Log(Vocab) + 1.5), "a fresh model predicts nearly uniformly");
        Assert.That(losses[1], Is.LessThan(losses[0]), "one AdamW step on the same batch lowers the loss");
    }

    [Test]
    public void BackwardAccumulatesIntoTheGradients()
    {
        var config = new ModelConfig(Vocab, 16, 1, 2, 1, 24, 5, Residual.Pre, LinearKind.SddCode);
        using var w = LayerDevices.Weights(deviceName, config);
        w.Initialize(9);
        using var model = new Model(w, Batch);
        model.Tokens.Upload(Tokens(Batch * config.SeqLen, 3));
        model.Targets.Upload(Tokens(Batch * config.SeqLen, 4));
        w.ZeroGrad();
        model.ForwardLoss(0.1f);
        model.Backward();
        var once = w.Grads.ToArray().Select(g => 2.0 * g).ToArray();
        model.ForwardLoss(0.1f);
        model.Backward();
        Check.Close(w.Grads.ToArray(), once, 1e-7, 1e-5, "two backward passes = twice the gradient");
        Assert.That(once.Max(Math.Abs), Is.GreaterThan(1e-4));
        Assert.Throws<InvalidOperationException>(model.Backward, "a second Backward without ForwardLoss");
    }
}
