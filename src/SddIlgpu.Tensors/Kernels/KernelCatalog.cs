// Every [Kernel] method of this assembly, compiled without a device to PTX (checked PTX ISA 7.8, what CUDA 11.8's
// ptxas accepts) or OpenCL C, each in a fresh ILGPU Context (a failed compile poisons its context); and where NVIDIA's
// tools are. Shared by the cross-compile tests and the kernel report (perf tool `kernels`) so both see the same code.
using System.Reflection;
using ILGPU;
using ILGPU.Backends;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.OpenCL;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

namespace SddIlgpu.Tensors.Kernels;

internal static class KernelCatalog
{
    /// <summary>Every static method marked [Kernel], ordered by class then name; kernels added later are found too.</summary>
    public static IReadOnlyList<MethodInfo> All { get; } =
        [.. typeof(KernelAttribute).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Where(m => m.IsDefined(typeof(KernelAttribute)))
            .OrderBy(m => m.DeclaringType!.Name, StringComparer.Ordinal).ThenBy(m => m.Name, StringComparer.Ordinal)];

    /// <summary><c>Class.Method</c>, the name the report and the tests use.</summary>
    public static string Name(MethodInfo kernel) => $"{kernel.DeclaringType!.Name}.{kernel.Name}";

    /// <summary>
    /// The kernel's PTX for sm_90 with PTX ISA 7.8: CUDA 11.8's ptxas rejects ILGPU's default <c>.version 8.0</c>,
    /// and ISA 7.8 gives the same PTX apart from that line. Compiled at O2 like every device.
    /// </summary>
    public static string CompilePtx(MethodInfo kernel)
    {
        using var context = Context.Create(b => b.EnableAlgorithms().Optimize(OpenClAcceptance.Optimization));
        using var backend = new PTXBackend(context, CudaArchitecture.SM_90, CudaInstructionSet.ISA_78, null!);
        return ((PTXCompiledKernel)Compile(backend, kernel)).PTXAssembly;
    }

    /// <summary>The kernel's OpenCL C as the opencl device compiles it: O2, generic address space claimed, OpenCL C 2.0.</summary>
    public static string CompileOpenCL(MethodInfo kernel)
    {
        using var context = Context.Create(b => b.EnableAlgorithms().Optimize(OpenClAcceptance.Optimization));
        using var backend = new CLBackend(context,
            new CLCapabilityContext(float16: false, float64: false, genericAddressSpace: true, int64_Atomics: true, subGroups: false),
            CLDeviceVendor.Other, CLCVersion.CL20);
        return ((CLCompiledKernel)Compile(backend, kernel)).Source;
    }

    static CompiledKernel Compile(Backend backend, MethodInfo kernel) =>
        backend.Compile(EntryPointDescription.FromExplicitlyGroupedKernel(kernel), default(KernelSpecialization));

    /// <summary>
    /// Where an NVIDIA tool (ptxas, nvdisasm, cuobjdump) is: on PATH, else where <c>.ci/fetch-ptxas.sh</c> unpacks
    /// CUDA 11.8 (<c>$SDD_CI_CACHE/cuda-11.8/usr/bin</c>, default <c>~/.cache/sdd-ci</c>); null when absent.
    /// </summary>
    public static string? FindTool(string tool)
    {
        var cache = Environment.GetEnvironmentVariable("SDD_CI_CACHE") is { Length: > 0 } c ? c
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "sdd-ci");
        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Append(Path.Combine(cache, "cuda-11.8", "usr", "bin"));
        return dirs.Where(d => d.Length > 0).Select(d => Path.Combine(d, tool)).FirstOrDefault(File.Exists);
    }
}
