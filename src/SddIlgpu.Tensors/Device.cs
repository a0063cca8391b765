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
    /// <summary>OpenCL devices with OpenCL C 2.0 or later (AMD, Intel, NVIDIA's OpenCL, PoCL), with or without the generic address space (see OpenClAcceptance).</summary>
    OpenCL,
    /// <summary>ILGPU's CPU accelerator: simulates GPU threads; deterministic reference for kernel tests.</summary>
    IlgpuCpu,
    /// <summary>The fast managed CPU path (SIMD, a fork/join worker pool), falling back to ILGPU CPU kernels per op.</summary>
    Cpu,
}

/// <summary>One device as <c>sdd devices</c> lists it.</summary>
public sealed record DeviceInfo(string Name, BackendKind Kind, string Description, bool Usable, string? Reason,
    long MemoryBytes, int MaxGroupSize, int Multiprocessors, int WarpSize, string Details)
{
    /// <summary>How a usable device was accepted when ILGPU's own rule would refuse it, or null.</summary>
    public string? Note { get; init; }

    /// <summary>True for GPUs (every CUDA device; OpenCL devices of type GPU). <c>auto</c> picks only GPUs before <c>cpu</c>.</summary>
    public bool IsGpu { get; init; }
}

/// <summary>A compute device opened by name: <c>cuda</c>, <c>cuda:1</c>, <c>opencl</c>, <c>ilgpu-cpu</c>, <c>cpu</c>, <c>auto</c>.</summary>
public sealed class Device : IDisposable
{
    static int resolverInstalled;
    readonly Context context;
    bool disposed;

    Device(string name, BackendKind kind, Context context, Accelerator accelerator, LaunchGeometry? geometry = null, LaunchRecorder? recorder = null)
    {
        Name = name;
        Kind = kind;
        this.context = context;
        Accelerator = accelerator;
        Stream = accelerator.DefaultStream;
        Counters = new DeviceCounters();
        Geometry = geometry ?? LaunchGeometry.Of(accelerator);
        Recorder = recorder;
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

    /// <summary>What launch shapes are sized from: the accelerator's own figures, or a GPU's for a launch replay.</summary>
    internal LaunchGeometry Geometry { get; }

    /// <summary>Records every launch (kernel, grid, group) when set; a dry recorder also skips running the kernels.</summary>
    internal LaunchRecorder? Recorder { get; }

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
    /// Opens a device by name. <c>auto</c> picks CUDA, then a usable OpenCL GPU, then <c>cpu</c>: an OpenCL CPU
    /// device (PoCL) is never picked by <c>auto</c>, because the managed <c>cpu</c> path is far faster on a CPU.
    /// Throws <see cref="DeviceNotFoundException"/> naming what is available when the device is absent.
    /// </summary>
    public static Device Open(string name = "auto")
    {
        ArgumentNullException.ThrowIfNull(name);
        var (kind, index) = Parse(name);
        InstallNativeResolver();
        if (kind is null)
        {
            var infos = List();
            var best = infos.FirstOrDefault(d => d.Kind == BackendKind.Cuda && d.Usable)
                ?? infos.FirstOrDefault(d => d.Kind == BackendKind.OpenCL && d.Usable && d.IsGpu);
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
                var ctx = NewContext(b => b.OpenCL(OpenClAcceptance.Accepts));
                var devices = ctx.GetCLDevices();
                if (index >= devices.Count)
                {
                    ctx.Dispose();
                    throw new DeviceNotFoundException(
                        devices.Count == 0
                            ? $"No usable OpenCL device was found for '{name}' (ILGPU needs OpenCL C 2.0 or later; install an OpenCL driver, e.g. Debian's pocl-opencl-icd, and see 'sdd devices')."
                            : $"'{name}' asks for OpenCL device {index} but only {devices.Count} usable ones exist.", List());
                }
                var device = devices[index];
                return Create($"opencl:{index}", BackendKind.OpenCL, ctx, () =>
                {
                    OpenClAcceptance.AllowWithoutGenericAddressSpace(device);
                    return device.CreateCLAccelerator(ctx);
                });
            }
        }
    }

    /// <summary>
    /// An <c>ilgpu-cpu</c> device whose launches are sized for <paramref name="geometry"/> (e.g. an H100) and recorded
    /// by <paramref name="recorder"/> instead of run when it is dry: ops then cost nothing, so one training step at model
    /// sizes lists every launch the GPU would get (the kernel report). Results are meaningless on a dry device.
    /// </summary>
    internal static Device OpenLaunchReplay(LaunchGeometry geometry, LaunchRecorder recorder)
    {
        InstallNativeResolver();
        var ctx = NewContext(b => b.CPU(IlgpuCpuDevice));
        Accelerator acc;
        try
        {
            acc = ctx.CreateCPUAccelerator(0, CPUAcceleratorMode.Parallel);
        }
        catch
        {
            ctx.Dispose();
            throw;
        }
        return new Device($"replay:{geometry.Name}", BackendKind.IlgpuCpu, ctx, acc, geometry, recorder);
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
            // O2 everywhere; OpenCL depends on it (OpenClAcceptance.Optimization: no __generic pointers at O2).
            b.EnableAlgorithms().Optimize(OpenClAcceptance.Optimization).Math(MathMode.Default);
            pick(b);
        });

    /// <summary>Lists every device this machine offers, including OpenCL devices ILGPU rejects (with the reason).</summary>
    public static IReadOnlyList<DeviceInfo> List()
    {
        InstallNativeResolver();
        var list = new List<DeviceInfo>();
        try
        {
            using var ctx = Context.Create(b => b.Cuda());
            var i = 0;
            foreach (var d in ctx.GetCudaDevices())
            {
                list.Add(new DeviceInfo($"cuda:{i++}", BackendKind.Cuda, d.Name, true, null, d.MemorySize,
                    d.MaxNumThreadsPerGroup, d.NumMultiprocessors, d.WarpSize,
                    $"arch {d.Architecture}, ISA {d.InstructionSet}, driver {d.DriverVersion}") { IsGpu = true });
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
                var ok = OpenClAcceptance.Accepts(d);
                list.Add(new DeviceInfo(ok ? $"opencl:{usable++}" : "opencl (rejected)", BackendKind.OpenCL, d.Name, ok,
                    OpenClAcceptance.RejectionReason(d), d.MemorySize, d.MaxNumThreadsPerGroup, d.NumMultiprocessors, d.WarpSize,
                    $"{d.DeviceType.ToString().Replace("CL_DEVICE_TYPE_", "", StringComparison.Ordinal)}, vendor {d.Vendor}, {d.DeviceVersion}, OpenCL C {d.CVersion} (-cl-std {d.CLStdVersion})")
                {
                    Note = OpenClAcceptance.NeedsOverride(d) ? OpenClAcceptance.OverrideNote : null,
                    IsGpu = (d.DeviceType & CLDeviceType.CL_DEVICE_TYPE_GPU) != 0,
                });
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

    /// <summary>
    /// .NET probes libcuda.so and libOpenCL.so but never libcuda.so.1 / libOpenCL.so.1, which is all most driver and
    /// ICD-loader installs ship (the unversioned names come with -dev packages).
    /// </summary>
    static void InstallNativeResolver()
    {
        if (Interlocked.Exchange(ref resolverInstalled, 1) != 0 || !OperatingSystem.IsLinux())
            return;
        try
        {
            NativeLibrary.SetDllImportResolver(typeof(Context).Assembly, (lib, asm, path) =>
            {
                string[] candidates = lib switch
                {
                    "cuda" or "libcuda" or "libcuda.so" => ["libcuda.so", "libcuda.so.1"],
                    // The ICD loader (ocl-icd-libopencl1) ships only libOpenCL.so.1 without the -dev package.
                    "OpenCL" or "libOpenCL" or "libOpenCL.so" => ["libOpenCL.so", "libOpenCL.so.1"],
                    _ => [],
                };
                foreach (var candidate in candidates)
                    if (NativeLibrary.TryLoad(candidate, asm, path, out var handle))
                        return handle;
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
