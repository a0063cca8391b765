// After the first step, a training step (ZeroGrad, upload tokens and targets, ForwardLoss, Backward, AdamW,
// one read-back of the loss) allocates nothing on the device, copies exactly 2 uploads + 1 download, and
// launches a number of kernels stated here per layer, so growth is noticed (on ilgpu-cpu, whose kernels are the
// ones CUDA and OpenCL run; the managed cpu path is held to no allocation and the same copies).
using NUnit.Framework;
using SddIlgpu.Layers;
using SddIlgpu.Tensors;
using SddIlgpu.Tests.Support;
using SddIlgpu.Training;

namespace SddIlgpu.Tests.Training;

[TestFixture]
public sealed class StepCountersTests
{
    /// <summary>
    /// Launches per step = 16 + B·L, counted when this test was written (a change must update it here, on
    /// purpose). The 16 outside the blocks: gradient fill, embedding and final norm forward and backward, the
    /// tied lm-head GEMMs, cross-entropy (its mean divided in the reduction's finish pass) and AdamW (norm² +
    /// update). Per block B = 49 for plain linears; sdd-code adds 24 (its six norms forward and backward, the
    /// up/gate concat and split); sdd-paper adds 30 (seven norms with α forward and backward); deepnorm adds 2 (the
    /// a·h scaling of both sub-layers). Every norm with a gain runs its gain gradient in two launches (partials per
    /// block of rows, then their fixed-order sum).
    /// </summary>
    static (int A, int B) Expected(Residual residual, LinearKind linear) =>
        (16, (linear switch { LinearKind.Plain => 49, LinearKind.SddCode => 73, _ => 79 }) + (residual == Residual.DeepNorm ? 2 : 0));

    static CounterSnapshot StepDelta(Device device, ModelConfig config)
    {
        const int Batch = 2;
        using var weights = new ModelWeights(device, config);
        weights.Initialize(7);
        using var model = new Model(weights, Batch);
        using var optimizer = new AdamW(weights, new AdamWConfig());
        var tokens = new float[Batch * config.SeqLen];
        var targets = new float[tokens.Length];
        for (var i = 0; i < tokens.Length; i++)
        {
            tokens[i] = i * 5 % config.Vocab;
            targets[i] = (i * 3 + 1) % config.Vocab;
        }
        var loss = new float[1];
        void Step()
        {
            weights.ZeroGrad();
            model.Tokens.Upload(tokens);
            model.Targets.Upload(targets);
            model.ForwardLoss(1f / tokens.Length);
            model.Backward();
            optimizer.Step(1e-3f);
            model.Loss.Download(loss);
        }
        Step();
        var before = device.Counters.Snapshot();
        Step();
        var delta = device.Counters.Snapshot() - before;
        Assert.That(float.IsFinite(loss[0]), $"loss {loss[0]}");
        return delta;
    }

    static ModelConfig Config(int layers, Residual residual, LinearKind linear) => new(29, 24, layers, 4, 2, 40, 9, residual, linear);

    [Test]
    public void StepAllocatesNothingCopiesThreeTimesAndLaunches16PlusBL(
        [Values("ilgpu-cpu", "cpu", "opencl")] string deviceName, [Values] LinearKind linear)
    {
        var device = TestDevices.Get(deviceName);
        foreach (var residual in Enum.GetValues<Residual>())
            foreach (var layers in new[] { 1, 3 })
            {
                var (a, b) = Expected(residual, linear);
                var d = StepDelta(device, Config(layers, residual, linear));
                var label = $"{deviceName} {ModelConfig.Name(residual)}/{ModelConfig.Name(linear)}, L={layers}";
                TestContext.Out.WriteLine($"{label}: {d}");
                Assert.That(d.Allocations, Is.Zero, $"{label}: device allocations in a training step");
                Assert.That(d.Copies, Is.EqualTo(3), $"{label}: host-device copies (2 uploads: tokens, targets; 1 read-back: the loss)");
                if (device.Kind is BackendKind.IlgpuCpu or BackendKind.OpenCL) // the kernels CUDA and OpenCL run; cpu counts managed op calls
                    Assert.That(d.Launches, Is.EqualTo(a + b * layers), $"{label}: launches per step, stated as {a} + {b}·L; if the model changed on purpose, update Expected");
            }
    }
}
