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

    /// <summary>
    /// The largest group of the cooperative kernels (group trees, row teams): their shared-memory arrays are sized
    /// for it (1 KB of floats each), and every GPU and OpenCL device runs groups of this size.
    /// </summary>
    public const int MaxCooperativeThreads = 256;

    /// <summary>
    /// Threads per group of the cooperative kernels on this device: 256 on GPUs and OpenCL; the warp (16) on the CPU
    /// accelerator, where every thread is an OS thread and every barrier an OS barrier (tests raise it to 256).
    /// </summary>
    public static int CooperativeThreads(this Device device) => device.Kernels.CooperativeThreads;

    /// <summary>
    /// Groups for a launch whose groups loop over <paramref name="items"/> work items (rows, partials): one per item
    /// on GPUs up to 32 per multiprocessor, one per multiprocessor on the CPU accelerator. Results never depend on it.
    /// </summary>
    public static int CooperativeGroups(this Device device, long items)
    {
        var cap = device.Geometry.HostMemory ? device.Geometry.Multiprocessors : device.Geometry.Multiprocessors * 32;
        return (int)Math.Clamp(items, 1, Math.Max(1, cap));
    }

    /// <summary>
    /// Lanes per row for the row kernels: a power of two, at most the group, about 8 elements per lane, so that a
    /// group of 256 threads holds 256 / width rows at once and a warp reads consecutive addresses.
    /// </summary>
    public static int TeamWidth(int rowLength, int groupThreads)
    {
        var width = 1;
        while (width < groupThreads && width * 8 < rowLength)
            width *= 2;
        return width;
    }

    /// <summary>
    /// The launch of a row kernel over <paramref name="rows"/> rows of <paramref name="rowLength"/>: cooperative
    /// groups holding 256 / Width rows each (a team of Width lanes per row), looping when rows outnumber them.
    /// </summary>
    public static (KernelConfig Config, int Width) RowLaunch(this Device device, long rows, int rowLength)
    {
        var threads = device.CooperativeThreads();
        var width = TeamWidth(rowLength, threads);
        var teams = threads / width;
        return (new KernelConfig(device.CooperativeGroups((rows + teams - 1) / teams), threads), width);
    }

    /// <summary>
    /// Inside a kernel: the sum of the <paramref name="width"/> lanes' values of one team (lanes of a row), as a
    /// shared-memory tree in a fixed order, returned to every lane. Every thread of the group must call it (it
    /// holds barriers). <paramref name="shared"/> has a slot per thread; the team uses [teamBase, teamBase + width).
    /// </summary>
    public static float TeamSum(ArrayView<float> shared, int teamBase, int lane, int width, float value)
    {
        shared[teamBase + lane] = value;
        Group.Barrier();
        for (var half = width / 2; half > 0; half /= 2)
        {
            if (lane < half)
                shared[teamBase + lane] += shared[teamBase + lane + half];
            Group.Barrier();
        }
        var total = shared[teamBase];
        Group.Barrier(); // every lane has read the total before the slots are reused
        return total;
    }

    /// <summary>
    /// Inside a kernel: the team-wide (max, Σ exp(v − max)) of the lanes' running pairs, merged by the same fixed
    /// tree as <see cref="TeamSum"/>, returned to every lane. Every thread of the group must call it.
    /// </summary>
    public static MaxSum TeamMaxSum(ArrayView<float> sharedMax, ArrayView<float> sharedSum, int teamBase, int lane, int width, MaxSum value)
    {
        sharedMax[teamBase + lane] = value.Max;
        sharedSum[teamBase + lane] = value.Sum;
        Group.Barrier();
        for (var half = width / 2; half > 0; half /= 2)
        {
            if (lane < half)
            {
                var i = teamBase + lane;
                var merged = MaxSum.Merge(new MaxSum(sharedMax[i], sharedSum[i]), new MaxSum(sharedMax[i + half], sharedSum[i + half]));
                sharedMax[i] = merged.Max;
                sharedSum[i] = merged.Sum;
            }
            Group.Barrier();
        }
        var total = new MaxSum(sharedMax[teamBase], sharedSum[teamBase]);
        Group.Barrier();
        return total;
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

/// <summary>
/// A running softmax denominator in one pass (online softmax, Milakov and Gimelshein 2018): Max of the values
/// seen and Sum = Σ exp(v − Max). The empty state is (−∞, 0).
/// </summary>
internal readonly struct MaxSum(float max, float sum)
{
    public readonly float Max = max;
    public readonly float Sum = sum;

    public static MaxSum Empty => new(float.NegativeInfinity, 0f);

    /// <summary>Adds value v (finite): a new maximum rescales the sum, otherwise exp(v − Max) is added.</summary>
    public MaxSum Add(float v) =>
        v > Max ? new MaxSum(v, Sum * MathF.Exp(Max - v) + 1f) : new MaxSum(Max, Sum + MathF.Exp(v - Max));

    /// <summary>The pair of the union of two value sets; an empty b leaves a unchanged (no ∞ − ∞).</summary>
    public static MaxSum Merge(MaxSum a, MaxSum b) =>
        b.Max > a.Max ? new MaxSum(b.Max, a.Sum * MathF.Exp(a.Max - b.Max) + b.Sum)
        : b.Sum == 0f ? a
        : new MaxSum(a.Max, a.Sum + b.Sum * MathF.Exp(b.Max - a.Max));
}
