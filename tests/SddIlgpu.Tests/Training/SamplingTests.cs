using NUnit.Framework;
using SddIlgpu.Layers;
using SddIlgpu.Tests.Support;
using SddIlgpu.Training;

namespace SddIlgpu.Tests.Training;

/// <summary>Sampling reads logits from a batch-1 model that shares the training weights.</summary>
public sealed class SamplingTests
{
    [Test]
    public void BatchOneLogitsEqualTheTrainingBatchRowAndGiveTheSameLoss()
    {
        var device = TestDevices.Get("cpu");
        var config = new ModelConfig(11, DModel: 16, NLayer: 2, NHead: 2, NKvHead: 1, FfnHidden: 24, SeqLen: 6, Residual: Residual.Post, Linear: LinearKind.SddCode);
        using var weights = new ModelWeights(device, config);
        weights.Initialize(3);
        using var big = new Model(weights, 3);
        using var one = new Model(weights, 1);
        var tokens = Enumerable.Range(0, 18).Select(i => (float)(i * 7 % 11)).ToArray();
        var targets = Enumerable.Range(0, 18).Select(i => (float)(i * 5 % 11)).ToArray();
        big.Tokens.Upload(tokens);
        big.Targets.Upload(targets);
        big.Forward();
        var logits = big.Logits.ToArray();

        // The mean cross-entropy of the logits equals what ForwardLoss reports.
        double loss = 0;
        for (var r = 0; r < 18; r++)
        {
            var row = logits.AsSpan(r * 11, 11);
            var max = row.ToArray().Max();
            var lse = max + Math.Log(row.ToArray().Sum(v => Math.Exp(v - max)));
            loss += lse - row[(int)targets[r]];
        }
        big.ForwardLoss(1f / 18);
        Assert.That(big.Loss.ToArray()[0], Is.EqualTo(loss / 18).Within(1e-5));

        // Row 1 of the batch through the batch-1 model gives the same logits.
        one.Tokens.Upload(tokens.AsSpan(6, 6));
        one.Forward();
        Check.Close(one.Logits.ToArray(), logits.AsSpan(66, 66).ToArray(), 1e-5, 1e-4, "batch-1 logits");
    }

    [Test]
    public void PickHonoursTopKAndTemperature()
    {
        float[] logits = [0f, 5f, 1f, 4.9f];
        Assert.That(TextSampler.Pick(logits, 1.0, 1, 0.99f), Is.EqualTo(1));
        var picks = Enumerable.Range(0, 200).Select(i => TextSampler.Pick(logits, 1.0, 2, i / 200f)).ToHashSet();
        Assert.That(picks, Is.EquivalentTo(new[] { 1, 3 }));
        Assert.That(TextSampler.Pick(logits, 0.01, 0, 0.7f), Is.EqualTo(1));
    }
}
