// Helpers of the managed CPU path tests: run an op on a device from host arrays, and run the same op on
// ilgpu-cpu for a cross-check.
using NUnit.Framework;
using SddIlgpu.Tensors;
using SddIlgpu.Tests.Support;

namespace SddIlgpu.Tests.Tensors;

internal static class ManagedTestKit
{
    public static Device Cpu => TestDevices.Get("cpu");

    /// <summary>
    /// Uploads <paramref name="inputs"/> into one arena on <paramref name="device"/>, runs the op over the
    /// tensors (in input order) and returns every tensor's contents afterwards.
    /// </summary>
    public static float[][] Run(Device device, float[][] inputs, Action<Tensor[]> op)
    {
        using var arena = device.Allocate(inputs.Sum(a => (long)a.Length), "managed-test");
        var tensors = inputs.Select((a, i) => arena.Take(a.Length, $"t{i}")).ToArray();
        for (var i = 0; i < inputs.Length; i++)
            tensors[i].Upload(inputs[i]);
        op(tensors);
        return tensors.Select(t => t.ToArray()).ToArray();
    }

    /// <summary>Runs the op on cpu and on ilgpu-cpu and compares the listed outputs within tolerance.</summary>
    public static void CrossCheck(float[][] inputs, Action<Device, Tensor[]> op, int[] outputs, double atol, double rtol, string label)
    {
        var managed = Run(Cpu, inputs, t => op(Cpu, t));
        var kernelDevice = TestDevices.Get("ilgpu-cpu");
        var kernel = Run(kernelDevice, inputs, t => op(kernelDevice, t));
        foreach (var o in outputs)
            Check.Close(managed[o], kernel[o], atol, rtol, $"{label}: output {o}, cpu vs ilgpu-cpu");
    }

    /// <summary>Runs the op twice on cpu from the same inputs and asserts bit-identical outputs.</summary>
    public static void Deterministic(float[][] inputs, Action<Tensor[]> op, string label)
    {
        var first = Run(Cpu, inputs, op);
        var second = Run(Cpu, inputs, op);
        for (var i = 0; i < first.Length; i++)
            Check.BitIdentical(second[i], first[i], $"{label}: tensor {i}");
    }

    /// <summary>Launches counted by the op on cpu.</summary>
    public static long Launches(Device device, Action op)
    {
        var before = device.Counters.Launches;
        op();
        return device.Counters.Launches - before;
    }

    public static double[] ToDouble(float[] a) => a.Select(v => (double)v).ToArray();
}
