// Same seed, same device, same bits, however busy the machine (issue 10 §6): training steps of the tiny
// model on a quiet process and again with busy threads taking the cores and the GC compacting the heap.
using NUnit.Framework;
using SddIlgpu.Layers;
using SddIlgpu.Training;
using SddIlgpu.Tests.Support;

namespace SddIlgpu.Tests.Layers;

/// <remarks>
/// Not on ilgpu-cpu (or the naive set, which runs on it): its launches are synchronous and serialised, and
/// each forced collection must stop its ~500 OS threads, which makes this minutes long; its transfers are
/// covered by <c>TransferRaceTests</c>.
/// </remarks>
[TestFixtureSource(nameof(Devices))]
public sealed class ContentionTests(string deviceName)
{
    public static readonly string[] Devices = ["cpu", "cuda", "opencl"];

    const int Vocab = 65, Batch = 2, Steps = 2, MaxBusyRuns = 50;

    static float[] Tokens(int n, int seed) => Enumerable.Range(0, n).Select(i => (float)((i * 7919 + seed * 31) % Vocab)).ToArray();

    /// <summary>Losses, gradients of the last step and weights after <see cref="Steps"/> AdamW steps.</summary>
    (float[] Losses, float[] Grads, float[] Weights) Train()
    {
        var config = ModelConfig.Preset("tiny", Vocab, Residual.Post, LinearKind.SddCode) with { NLayer = 1 };
        using var w = LayerDevices.Weights(deviceName, config);
        w.Initialize(5);
        using var model = new Model(w, Batch);
        using var adam = new AdamW(w, new AdamWConfig());
        var losses = new float[Steps];
        for (var step = 0; step < Steps; step++)
        {
            model.Tokens.Upload(Tokens(Batch * config.SeqLen, step));
            model.Targets.Upload(Tokens(Batch * config.SeqLen, step + 100));
            w.ZeroGrad();
            model.ForwardLoss(1f / (Batch * config.SeqLen));
            model.Backward();
            adam.Step(1e-3f);
            losses[step] = model.Loss.ToArray()[0];
        }
        return (losses, w.Grads.ToArray(), w.Values.ToArray());
    }

    [Test]
    public void TrainingStepsAreBitIdenticalUnderContention()
    {
        var quiet = Train();
        int collections, runs = 0;
        using (var load = new Contention(spinners: 2 * Environment.ProcessorCount, compactGc: true))
        {
            // A fast device can finish the steps before the compacting thread's first collection: train again, checking
            // every run, until two collections have run (the first may fall before the steps began); bounded, so a
            // stuck thread still fails below.
            do
            {
                var busy = Train();
                runs++;
                Check.BitIdentical(busy.Losses, quiet.Losses, $"{deviceName}: losses (busy run {runs})");
                Check.BitIdentical(busy.Grads, quiet.Grads, $"{deviceName}: gradients of the last step (busy run {runs})");
                Check.BitIdentical(busy.Weights, quiet.Weights, $"{deviceName}: weights after {Steps} AdamW steps (busy run {runs})");
            }
            while (load.Collections < 2 && runs < MaxBusyRuns);
            collections = load.Collections;
        }
        Assert.That(collections, Is.GreaterThan(0), $"the compacting thread never ran in {runs} busy runs: the test proved nothing");
    }
}
