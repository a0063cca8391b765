// Scratch space of one conformance check: seeded host inputs uploaded to the device, outputs read back,
// every arena freed when the check ends. Checks allocate freely; the training step never does.
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Training.Conformance;

internal sealed class Probe(Device device, OpSet ops) : IDisposable
{
    readonly List<Arena> arenas = [];

    public Device Device { get; } = device;
    public OpSet Ops { get; } = ops;

    /// <summary>A device tensor holding <paramref name="data"/>.</summary>
    public Tensor Up(float[] data, Shape shape, string name = "input")
    {
        var t = Zeros(shape, name);
        t.Upload(data);
        return t;
    }

    public Tensor Zeros(Shape shape, string name = "output")
    {
        var arena = Device.Allocate(shape.Length, name);
        arenas.Add(arena);
        return arena.Take(shape, name);
    }

    public static float[] Down(Tensor t) => t.ToArray();

    /// <summary>Deterministic values in [-scale, scale) from a seeded generator.</summary>
    public static float[] Random(int n, int seed, float scale = 1f)
    {
        var r = new System.Random(seed);
        var a = new float[n];
        for (var i = 0; i < n; i++)
            a[i] = (float)((r.NextDouble() * 2 - 1) * scale);
        return a;
    }

    public void Dispose()
    {
        foreach (var a in arenas)
            a.Dispose();
        arenas.Clear();
    }
}
