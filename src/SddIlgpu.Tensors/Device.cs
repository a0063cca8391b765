// A compute device: an ILGPU context and accelerator opened by name, with every kernel compiled at open
// and the op set that layers call. Never falls back silently: asking for CUDA and not getting it throws.
using System.Reflection;
using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Backends.OpenCL;
using ILGPU.Runtime.OpenCL;
using SddIlgpu.Tensors.Kernels;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors;

/// <summary>What runs the ops.</summary>
public enum BackendKind
{
    /// <summary>NVIDIA GPUs through ILGPU's PTX back end.</summary>
    Cuda,
    /// <summary>OpenCL 2.0 devices with the generic address space (AMD, Intel, ...).</summary>
    OpenCL,
    /// <summary>ILGPU's CPU accelerator: simulates GPU threads; deterministic reference for kernel tests.</summary>
    IlgpuCpu,
    /// <summary>The fast managed CPU path (SIMD, a fork/join worker pool), falling back to ILGPU CPU kernels per op.</summary>
    Cpu,
}

/// <summary>One device as <c>sdd devices</c> lists it.</summary>
public sealed record DeviceInfo(string Name, BackendKind Kind, string Description, bool Usable, string? Reason,
    long MemoryBytes, int MaxGroupSize, int Multiprocessors, int WarpSize, string Details);

/// <summary>A compute device opened by name: <c>cuda</c>, <c>cuda:1</c>, <c>opencl</c>, <c>ilgpu-cpu</c>, <c>cpu</c>, <c>auto</c>.</summary>
public sealed class Device : IDisposable
{
    static int resolverInstalled;
    readonly Context context;
    bool disposed;

    Device(string name, BackendKind kind, Context context, Accelerator accelerator)
    {
        Name = name;
        Kind = kind;
        this.context = context;
        Accelerator = accelerator;
        Stream = accelerator.DefaultStream;
        Counters = new DeviceCounters();
        try
        {
            Kernels = new KernelOps(this);
        }
        catch
        {
            accelerator.Dispose();
            context.Dispose();
            throw;
        }
        Ops = kind == BackendKind.Cpu ? Managed.ManagedOps.Create(this, Kernels) : Kernels.ToOpSet();
    }

    /// <summary>The name the device was opened with, resolved (e.g. <c>cuda:0</c>).</summary>
    public string Name { get; }

    public BackendKind Kind { get; }

    /// <summary>The accelerator's own description (GPU model, driver).</summary>
    public string Description => Accelerator.Name;

    /// <summary>True when device memory is host memory (both CPU kinds).</summary>
    public bool IsHostMemory => Accelerator.AcceleratorType == AcceleratorType.CPU;

    /// <summary>
    /// Bytes this device can hold: the GPU's memory (ILGPU's MemorySize), or for the CPU kinds the host memory
    /// available now (<see cref="AvailableHostMemoryBytes"/>).
    /// </summary>
    public long MemoryBytes => IsHostMemory ? AvailableHostMemoryBytes() : Accelerator.MemorySize;

    /// <summary>
    /// Host memory available to this process now, in bytes: Linux's MemAvailable (/proc/meminfo), capped by the
    /// runtime's limit (container or GC heap hard limit, from GC.GetGCMemoryInfo).
    /// </summary>
    public static long AvailableHostMemoryBytes()
    {
        var limit = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
            {
                if (!line.StartsWith("MemAvailable:", StringComparison.Ordinal))
                    continue;
                var kb = line["MemAvailable:".Length..].Trim().Split(' ')[0];
                if (long.TryParse(kb, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var k))
                    return Math.Min(limit, k * 1024);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Not Linux: the runtime's figure is all there is.
        }
        return limit;
    }

    /// <summary>The ops layers call. On <c>cpu</c> the managed implementations replace the kernels family by family.</summary>
    public OpSet Ops { get; }

    /// <summary>The ILGPU kernel implementation of every op (also what <c>cpu</c> falls back to).</summary>
    internal KernelOps Kernels { get; }

    public DeviceCounters Counters { get; }

    internal Accelerator Accelerator { get; }
    internal AcceleratorStream Stream { get; }

    /// <summary>The ILGPU version this build runs on.</summary>
    public static string IlgpuVersion =>
        typeof(Context).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion?.Split('+')[0]
        ?? typeof(Context).Assembly.GetName().Version?.ToString() ?? "unknown";

    /// <summary>Allocates an arena of <paramref name="capacity"/> float32 elements (zeroed).</summary>
    public Arena Allocate(long capacity, string name) => new(this, capacity, name);

    /// <summary>Allocates an arena holding exactly one tensor of the given shape.</summary>
    public Tensor AllocateTensor(Shape shape, string name) => Allocate(shape.Length, name).Take(shape, name);

    /// <summary>Waits for all queued work.</summary>
    public void Synchronize()
    {
        ThrowIfDisposed();
        Counters.CountSync();
        Stream.Synchronize();
    }

    internal void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(disposed, this);

    public void Dispose()
    {
        if (disposed)
            return;
        disposed = true;
        Accelerator.Dispose();
        context.Dispose();
    }

    public override string ToString() => $"{Name} ({Description})";

    // ------------------------------------------------------------------ opening and listing

    /// <summary>
    /// Opens a device by name. <c>auto</c> picks CUDA, then a usable OpenCL device, then <c>cpu</c>.
    /// Throws <see cref="DeviceNotFoundException"/> naming what is available when the device is absent.
    /// </summary>
    public static Device Open(string name = "auto")
    {
        ArgumentNullException.ThrowIfNull(name);
        var (kind, index) = Parse(name);
        InstallCudaResolver();
        if (kind is null)
        {
            var infos = List();
            var best = infos.FirstOrDefault(d => d.Kind == BackendKind.Cuda && d.Usable)
                ?? infos.FirstOrDefault(d => d.Kind == BackendKind.OpenCL && d.Usable);
            return best is null ? OpenCpu(BackendKind.Cpu) : Open(best.Name);
        }
        switch (kind.Value)
        {
            case BackendKind.Cpu:
            case BackendKind.IlgpuCpu:
                if (index != 0)
                    throw new DeviceNotFoundException($"There is one CPU device; '{name}' asks for index {index}. Use '{KindName(kind.Value)}'.", List());
                return OpenCpu(kind.Value);
            case BackendKind.Cuda:
            {
                var ctx = NewContext(b => b.Cuda());
                var devices = ctx.GetCudaDevices();
                if (index >= devices.Count)
                {
                    ctx.Dispose();
                    throw new DeviceNotFoundException(
                        devices.Count == 0
                            ? $"No CUDA device was found for '{name}' (is the NVIDIA driver's libcuda.so.1 installed and a GPU visible?)."
                            : $"'{name}' asks for CUDA device {index} but only {devices.Count} exist.", List());
                }
                return Create($"cuda:{index}", BackendKind.Cuda, ctx, () => ctx.CreateCudaAccelerator(index));
            }
            default:
            {
                var ctx = NewContext(b => b.OpenCL());
                var devices = ctx.GetCLDevices();
                if (index >= devices.Count)
                {
                    ctx.Dispose();
                    throw new DeviceNotFoundException(
                        devices.Count == 0
                            ? $"No usable OpenCL device was found for '{name}' (ILGPU needs OpenCL 2.0 with the generic address space; see 'sdd devices')."
                            : $"'{name}' asks for OpenCL device {index} but only {devices.Count} usable ones exist.", List());
                }
                return Create($"opencl:{index}", BackendKind.OpenCL, ctx, () => ctx.CreateCLAccelerator(index));
            }
        }
    }

    static Device OpenCpu(BackendKind kind)
    {
        var ctx = NewContext(b => b.CPU(IlgpuCpuDevice));
        return Create(KindName(kind), kind, ctx,
            () => ctx.CreateCPUAccelerator(0, CPUAcceleratorMode.Parallel));
    }

    static Device Create(string name, BackendKind kind, Context ctx, Func<Accelerator> make)
    {
        Accelerator acc;
        try
        {
            acc = make();
        }
        catch
        {
            ctx.Dispose();
            throw;
        }
        var expected = kind switch
        {
            BackendKind.Cuda => AcceleratorType.Cuda,
            BackendKind.OpenCL => AcceleratorType.OpenCL,
            _ => AcceleratorType.CPU,
        };
        if (acc.AcceleratorType != expected)
        {
            acc.Dispose();
            ctx.Dispose();
            throw new DeviceNotFoundException($"Asked for {name} but ILGPU gave a {acc.AcceleratorType} accelerator; refusing a silent fallback.", List());
        }
        return new Device(name, kind, ctx, acc);
    }

    /// <summary>
    /// ILGPU's CPU accelerator shaped so that 256-thread groups (the GEMM tile) fit, with one
    /// multiprocessor per core. Warp 16 keeps grid-stride launches cheap (one OS thread per simulated thread).
    /// </summary>
    static CPUDevice IlgpuCpuDevice { get; } = new(16, 16, Math.Max(1, Environment.ProcessorCount));

    static Context NewContext(Action<Context.Builder> pick) =>
        Context.Create(b =>
        {
            b.EnableAlgorithms().Optimize(OptimizationLevel.O2).Math(MathMode.Default);
            pick(b);
        });

    /// <summary>Lists every device this machine offers, including OpenCL devices ILGPU rejects (with the reason).</summary>
    public static IReadOnlyList<DeviceInfo> List()
    {
        InstallCudaResolver();
        var list = new List<DeviceInfo>();
        try
        {
            using var ctx = Context.Create(b => b.Cuda());
            var i = 0;
            foreach (var d in ctx.GetCudaDevices())
            {
                list.Add(new DeviceInfo($"cuda:{i++}", BackendKind.Cuda, d.Name, true, null, d.MemorySize,
                    d.MaxNumThreadsPerGroup, d.NumMultiprocessors, d.WarpSize,
                    $"arch {d.Architecture}, ISA {d.InstructionSet}, driver {d.DriverVersion}"));
            }
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or InvalidOperationException or EntryPointNotFoundException)
        {
            // No CUDA driver: nothing to list.
        }
        try
        {
            using var ctx = Context.Create(b => b.OpenCL(_ => true));
            var usable = 0;
            foreach (var d in ctx.GetCLDevices())
            {
                var ok = d.CVersion >= CLCVersion.CL20 && d.Capabilities.GenericAddressSpace;
                var reason = ok ? null
                    : d.CVersion < CLCVersion.CL20 ? $"OpenCL C {d.CVersion} is below the 2.0 that ILGPU needs"
                    : "no generic address space support (ILGPU needs it)";
                list.Add(new DeviceInfo(ok ? $"opencl:{usable++}" : "opencl (rejected)", BackendKind.OpenCL, d.Name, ok, reason,
                    d.MemorySize, d.MaxNumThreadsPerGroup, d.NumMultiprocessors, d.WarpSize,
                    $"vendor {d.Vendor}, {d.DeviceVersion}, OpenCL C {d.CVersion}"));
            }
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or InvalidOperationException or EntryPointNotFoundException or CLException)
        {
            // No OpenCL ICD loader: nothing to list.
        }
        var cpu = IlgpuCpuDevice;
        var cores = Environment.ProcessorCount;
        list.Add(new DeviceInfo("cpu", BackendKind.Cpu, $"managed SIMD path on {cores} cores", true, null,
            GC.GetGCMemoryInfo().TotalAvailableMemoryBytes, cpu.MaxNumThreadsPerGroup, cores, cpu.WarpSize,
            $"Vector512 {(System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? "yes" : "no")}, Vector256 {(System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated ? "yes" : "no")}"));
        list.Add(new DeviceInfo("ilgpu-cpu", BackendKind.IlgpuCpu, "ILGPU CPU accelerator (simulated GPU threads)", true, null,
            GC.GetGCMemoryInfo().TotalAvailableMemoryBytes, cpu.MaxNumThreadsPerGroup, cpu.NumMultiprocessors, cpu.WarpSize,
            "deterministic kernel-test device; slow"));
        return list;
    }

    static string KindName(BackendKind kind) => kind switch
    {
        BackendKind.Cuda => "cuda",
        BackendKind.OpenCL => "opencl",
        BackendKind.IlgpuCpu => "ilgpu-cpu",
        _ => "cpu",
    };

    /// <summary>Parses a device name; kind null means auto.</summary>
    internal static (BackendKind? Kind, int Index) Parse(string name)
    {
        var s = name.Trim().ToLowerInvariant();
        var index = 0;
        var colon = s.IndexOf(':', StringComparison.Ordinal);
        if (colon >= 0)
        {
            if (!int.TryParse(s.AsSpan(colon + 1), out index) || index < 0)
                throw new DeviceNotFoundException($"Device '{name}': the index after ':' must be a non-negative number, e.g. 'cuda:1'.", null);
            s = s[..colon];
        }
        BackendKind? kind = s switch
        {
            "auto" => null,
            "cuda" => BackendKind.Cuda,
            "opencl" or "cl" => BackendKind.OpenCL,
            "ilgpu-cpu" => BackendKind.IlgpuCpu,
            "cpu" => BackendKind.Cpu,
            _ => throw new DeviceNotFoundException(
                $"Unknown device '{name}'. Use one of: auto, cuda, cuda:N, opencl, opencl:N, cpu, ilgpu-cpu.", List()),
        };
        return (kind, index);
    }

    /// <summary>.NET probes libcuda.so but never libcuda.so.1, which is all most driver installs ship.</summary>
    static void InstallCudaResolver()
    {
        if (Interlocked.Exchange(ref resolverInstalled, 1) != 0 || !OperatingSystem.IsLinux())
            return;
        try
        {
            NativeLibrary.SetDllImportResolver(typeof(Context).Assembly, (lib, asm, path) =>
            {
                if (lib is "cuda" or "libcuda" or "libcuda.so")
                {
                    foreach (var candidate in new[] { "libcuda.so", "libcuda.so.1" })
                        if (NativeLibrary.TryLoad(candidate, asm, path, out var handle))
                            return handle;
                }
                return IntPtr.Zero;
            });
        }
        catch (InvalidOperationException)
        {
            // ILGPU (on WSL) or the host already installed a resolver; keep it.
        }
    }
}

/// <summary>The requested device does not exist; the message names what is available.</summary>
public sealed class DeviceNotFoundException : Exception
{
    public DeviceNotFoundException(string message, IReadOnlyList<DeviceInfo>? available)
        : base(available is null ? message : message + " Available: " + string.Join(", ", available.Where(d => d.Usable).Select(d => d.Name)) + ".")
    {
        Available = available ?? [];
    }

    public IReadOnlyList<DeviceInfo> Available { get; }
}
