// Shared plumbing of the ILGPU kernels: compile-at-open with the kernel's name in the error, grid-stride
// launch shapes bounded by the accelerator, and the [Kernel] marker the cross-compile test reflects over.
using ILGPU;
using ILGPU.Runtime;

namespace SddIlgpu.Tensors.Kernels;

/// <summary>Marks a static method as an explicitly grouped ILGPU kernel (the cross-compile test finds them all).</summary>
[AttributeUsage(AttributeTargets.Method)]
internal sealed class KernelAttribute : Attribute;

/// <summary>A kernel failed to compile for a device; the ILGPU context is poisoned and must not be reused.</summary>
public sealed class KernelCompilationException(string kernel, string device, Exception inner)
    : Exception($"Kernel '{kernel}' did not compile for {device}: {Flatten(inner)}", inner)
{
    public string Kernel { get; } = kernel;

    static string Flatten(Exception e)
    {
        var parts = new List<string>();
        for (var x = e; x is not null; x = x.InnerException)
            parts.Add($"{x.GetType().Name}: {x.Message}");
        return string.Join(" -> ", parts);
    }
}

internal static class KernelInfra
{
    /// <summary>Loads (compiles) one kernel now, naming it when it fails; recorded under that name when the device records.</summary>
    public static T Load<T>(this Device device, string name, Func<Accelerator, T> load) where T : Delegate
    {
        T kernel;
        try
        {
            kernel = load(device.Accelerator);
        }
        catch (Exception e)
        {
            throw new KernelCompilationException(name, device.Name, e);
        }
        return device.Recorder is { } recorder ? recorder.Wrap(name, kernel) : kernel;
    }

    /// <summary>Group size for 1-D grid-stride kernels: a warp on the CPU accelerator, 256 threads on GPUs.</summary>
    public static int GroupSize(this Device device) =>
        device.Geometry.HostMemory ? device.Geometry.WarpSize : Math.Min(256, device.Geometry.MaxGroupSize);

    /// <summary>A bounded 1-D launch for a grid-stride loop over <paramref name="n"/> items.</summary>
    public static KernelConfig GridStride(this Device device, long n)
    {
        var group = device.GroupSize();
        var maxGroups = device.Geometry.HostMemory
            ? device.Geometry.Multiprocessors * 2
            : device.Geometry.Multiprocessors * 8;
        var groups = (int)Math.Clamp((n + group - 1) / group, 1, maxGroups);
        return new KernelConfig(groups, group);
    }

    /// <summary>Counts and returns the device's stream (every launch goes through here).</summary>
    public static AcceleratorStream Launching(this Device device)
    {
        device.ThrowIfDisposed();
        device.Counters.CountLaunch();
        return device.Stream;
    }

    /// <summary>The first global thread index and the stride of a 1-D grid-stride loop (inside kernels).</summary>
    public static int GlobalStart => Grid.GlobalIndex.X;

    public static int GlobalStride => Grid.DimX * Group.DimX;

    public static void SameLength(Tensor a, Tensor b, string op)
    {
        if (a.Length != b.Length)
            throw new ArgumentException($"{op}: {a.Name} {a.Shape} and {b.Name} {b.Shape} must have the same number of elements ({a.Length} vs {b.Length}).");
    }

    public static int IntLength(Tensor t, string op) =>
        t.Length <= int.MaxValue ? (int)t.Length
        : throw new ArgumentException($"{op}: {t.Name} has {t.Length} elements; kernels index with 32-bit integers (at most {int.MaxValue}).");
}
