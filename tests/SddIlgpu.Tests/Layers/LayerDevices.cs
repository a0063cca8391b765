// The back ends the layer tests run on: the ILGPU CPU accelerator, the managed cpu path, and "naive"
// (the CPU accelerator's memory with NaiveOps), which checks the layers independently of the kernels;
// cuda and opencl where such a device is present (ignored otherwise; CI has PoCL, so opencl runs there).
using SddIlgpu.Layers;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;
using SddIlgpu.Tests.Support;

namespace SddIlgpu.Tests.Layers;

public static class LayerDevices
{
    public static readonly string[] All = ["ilgpu-cpu", "cpu", "naive", "cuda", "opencl"];

    static readonly Dictionary<string, OpSet> NaiveSets = [];

    public static (Device Device, OpSet Ops) Get(string name)
    {
        if (name != "naive")
        {
            var d = TestDevices.Get(name);
            return (d, d.Ops);
        }
        var device = TestDevices.Get("ilgpu-cpu");
        lock (NaiveSets)
        {
            if (!NaiveSets.TryGetValue(name, out var ops))
                NaiveSets[name] = ops = NaiveOps.Create(device);
            return (device, ops);
        }
    }

    internal static ModelWeights Weights(string name, ModelConfig config)
    {
        var (device, ops) = Get(name);
        return new ModelWeights(device, config, ops);
    }
}
