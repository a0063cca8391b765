// Launch shapes and their recording: the figures a device's launch configurations are sized from (taken from the
// accelerator, or a GPU's datasheet for a replay), and a recorder of every (kernel, grid, group) launched, which the
// kernel report uses to list the groups each kernel gets at model sizes straight from the code that launches it.
using System.Linq.Expressions;
using ILGPU;
using ILGPU.Runtime;

namespace SddIlgpu.Tensors.Kernels;

/// <summary>
/// What grid-stride and per-row launches are sized from. <see cref="HostMemory"/> selects the CPU accelerator's
/// shapes (a warp per group); otherwise groups of up to 256 threads, up to 8 per multiprocessor.
/// </summary>
internal sealed record LaunchGeometry(string Name, bool HostMemory, int WarpSize, int MaxGroupSize, int Multiprocessors)
{
    public static LaunchGeometry Of(Accelerator a) =>
        new(a.Name, a.AcceleratorType == AcceleratorType.CPU, a.WarpSize, a.MaxNumThreadsPerGroup, a.NumMultiprocessors);

    /// <summary>NVIDIA H100 SXM (sm_90): 132 SMs, warp 32, 1,024 threads per group.</summary>
    public static LaunchGeometry H100 { get; } = new("H100", false, 32, 1024, 132);

    /// <summary>NVIDIA A100 (sm_80): 108 SMs, warp 32, 1,024 threads per group.</summary>
    public static LaunchGeometry A100 { get; } = new("A100", false, 32, 1024, 108);
}

/// <summary>One launch: the kernel's name as loaded, groups in the grid and threads per group.</summary>
internal readonly record struct LaunchRecord(string Kernel, long Groups, int GroupSize);

/// <summary>Collects launches; when <see cref="Dry"/>, the kernels are not run at all.</summary>
internal sealed class LaunchRecorder(bool dry)
{
    readonly List<LaunchRecord> launches = [];

    public bool Dry { get; } = dry;

    public IReadOnlyList<LaunchRecord> Launches => launches;

    public void Clear() => launches.Clear();

    public void Record(string kernel, KernelConfig config) =>
        launches.Add(new LaunchRecord(kernel, config.GridDim.Size, config.GroupDim.Size));

    /// <summary>
    /// Wraps a loaded kernel (<c>Action&lt;AcceleratorStream, KernelConfig, ...&gt;</c>) so that each call is recorded
    /// under <paramref name="name"/> and, unless dry, then runs.
    /// </summary>
    public T Wrap<T>(string name, T kernel) where T : Delegate
    {
        var invoke = typeof(T).GetMethod("Invoke")!;
        var parameters = invoke.GetParameters().Select(p => Expression.Parameter(p.ParameterType, p.Name)).ToArray();
        if (parameters.Length < 2 || parameters[1].Type != typeof(KernelConfig))
            throw new InvalidOperationException($"Kernel '{name}' is loaded as {typeof(T).Name}; a recorded kernel takes (AcceleratorStream, KernelConfig, ...).");
        Expression record = Expression.Call(Expression.Constant(this), nameof(Record), null, Expression.Constant(name), parameters[1]);
        var body = Dry ? record : Expression.Block(record, Expression.Invoke(Expression.Constant(kernel), parameters));
        return Expression.Lambda<T>(body, parameters).Compile();
    }
}
