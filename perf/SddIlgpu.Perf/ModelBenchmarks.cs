// The model-level kernels `sdd bench` times, for local work with BenchmarkDotNet: attention forward +
// backward, RMS norm forward + backward, and one whole training step (ForwardLoss, Backward, AdamW) at
// each preset's shapes, on the managed `cpu` path and on `ilgpu-cpu` (tiny shapes only there).
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using SddIlgpu.Layers;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;
using SddIlgpu.Training;

namespace SddIlgpu.Perf;

public sealed class ModelBenchConfig : ManualConfig
{
    public ModelBenchConfig()
    {
        AddJob(Job.Default.WithLaunchCount(1).WithWarmupCount(2).WithIterationCount(5)
            .WithToolchain(InProcessEmitToolchain.Instance));
        AddFilter(new BenchmarkDotNet.Filters.SimpleFilter(bc =>
            !(bc.Parameters["DeviceName"] is "ilgpu-cpu" && bc.Parameters["Preset"] is not "tiny")));
    }
}

[Config(typeof(ModelBenchConfig))]
public class ModelBenchmarks
{
    Device device = null!;
    ModelWeights weights = null!;
    Model model = null!;
    AdamW optimizer = null!;
    Arena arena = null!;
    Tensor q = null!, k = null!, v = null!, saved = null!, scratch = null!, ctx = null!, dQ = null!, dK = null!, dV = null!;
    Tensor x = null!, gain = null!, y = null!, rstd = null!, dGain = null!;
    AttentionShape shape;
    float scale;

    [Params("cpu", "ilgpu-cpu")]
    public string DeviceName { get; set; } = "cpu";

    [Params("tiny", "shakespeare-cpu", "baby-gpt")]
    public string Preset { get; set; } = "tiny";

    [GlobalSetup]
    public void Setup()
    {
        device = Device.Open(DeviceName);
        var config = ModelConfig.Preset(Preset, 65, Residual.Post, LinearKind.SddCode);
        var batch = TrainConfig.ForPreset(Preset).Batch;
        weights = new ModelWeights(device, config);
        weights.Initialize(1);
        model = new Model(weights, batch);
        optimizer = new AdamW(weights, new AdamWConfig());
        var tokens = Enumerable.Range(0, batch * config.SeqLen).Select(i => (float)(i * 31 % 65)).ToArray();
        model.Tokens.Upload(tokens);
        model.Targets.Upload(tokens.Reverse().ToArray());
        scale = 1f / tokens.Length;

        shape = new AttentionShape(batch, config.SeqLen, config.NHead, config.NKvHead, config.HeadDim);
        long bt = (long)batch * config.SeqLen, c = config.DModel;
        long savedLength = device.Ops.Attention.SavedLength(shape), scratchLength = device.Ops.Attention.ScratchLength(shape);
        arena = device.Allocate(7 * bt * c + savedLength + scratchLength + 2 * c + bt, "bench.model");
        (q, k, v, ctx, dQ, dK, dV) = (Take(bt * c), Take(bt * c), Take(bt * c), Take(bt * c), Take(bt * c), Take(bt * c), Take(bt * c));
        (saved, scratch) = (Take(savedLength), Take(scratchLength));
        (x, y, gain, dGain, rstd) = (q, ctx, Take(c), Take(c), Take(bt));
        foreach (var (t, s) in new[] { (q, 1ul), (k, 2ul), (v, 3ul), (gain, 4ul) })
            device.Ops.Random.FillUniform(t, 7, s);
    }

    Tensor Take(long n) => arena.Take(checked((int)n));

    [Benchmark]
    public void AttentionForwardBackward()
    {
        device.Ops.Attention.Forward(shape, q, k, v, saved, ctx);
        device.Ops.Attention.Backward(shape, ctx, q, k, v, ctx, saved, scratch, dQ, dK, dV);
        device.Synchronize();
    }

    [Benchmark]
    public void RmsNormForwardBackward()
    {
        device.Ops.Norm.Forward(x, gain, y, rstd, shape.NH * shape.HS, 1e-5f);
        device.Ops.Norm.Backward(y, x, gain, rstd, dQ, dGain, shape.NH * shape.HS);
        device.Synchronize();
    }

    [Benchmark]
    public void TrainingStep()
    {
        weights.ZeroGrad();
        model.ForwardLoss(scale);
        model.Backward();
        optimizer.Step(1e-4f);
        device.Synchronize();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        arena.Dispose();
        optimizer.Dispose();
        model.Dispose();
        weights.Dispose();
        device.Dispose();
    }
}
