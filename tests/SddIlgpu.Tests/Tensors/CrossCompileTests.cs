// Every [Kernel] method of SddIlgpu.Tensors compiled without a GPU for CUDA (PTX, sm_90 / ISA 8.0) and OpenCL C 2.0,
// each in a fresh ILGPU Context (a failed compile poisons its context). The PTX must not call out (.extern .func)
// or use f64; where clang / ptxas are on PATH they validate the OpenCL C / assemble the PTX (design §2).
using System.Diagnostics;
using System.Reflection;
using ILGPU;
using ILGPU.Backends;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.OpenCL;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;
using NUnit.Framework;
using SddIlgpu.Tensors.Kernels;

namespace SddIlgpu.Tests.Tensors;

public sealed class CrossCompileTests
{
    static readonly Dictionary<(MethodInfo, bool), string> Compiled = [];
    static readonly Lock Gate = new();

    /// <summary>Every static method marked [Kernel] in the tensor assembly; kernels added later are found too.</summary>
    public static IEnumerable<TestCaseData> Kernels() =>
        typeof(KernelAttribute).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Where(m => m.IsDefined(typeof(KernelAttribute)))
            .OrderBy(m => m.DeclaringType!.Name, StringComparer.Ordinal).ThenBy(m => m.Name, StringComparer.Ordinal)
            .Select(m => new TestCaseData(m).SetArgDisplayNames($"{m.DeclaringType!.Name}.{m.Name}"));

    [Test]
    public void FindsTheKernels() => Assert.That(Kernels().Count(), Is.GreaterThanOrEqualTo(20));

    [TestCaseSource(nameof(Kernels))]
    public void CompilesToPtxWithoutCallsOrDoubles(MethodInfo kernel)
    {
        var ptx = Compile(kernel, ptx: true);
        Assert.That(ptx, Does.Contain(".entry"), "PTX has an entry point");
        Assert.That(ptx, Does.Not.Contain(".extern .func"), "PTX calls an unresolved function");
        // A double shows as a .f64 type suffix (e.g. cvt.f64.f32); registers named %f64 are float registers.
        Assert.That(System.Text.RegularExpressions.Regex.IsMatch(ptx, @"\.f64\b"), Is.False, "PTX uses double precision");
    }

    [TestCaseSource(nameof(Kernels))]
    public void CompilesToOpenCL(MethodInfo kernel) =>
        Assert.That(Compile(kernel, ptx: false), Does.Contain("kernel"), "OpenCL C has a kernel");

    [TestCaseSource(nameof(Kernels))]
    public void PtxAssemblesForSm90(MethodInfo kernel)
    {
        var ptx = Compile(kernel, ptx: true);
        RequireTool("ptxas");
        var file = TempFile(kernel, ".ptx", ptx);
        var (code, output) = Run("ptxas", $"-arch=sm_90 -o {file}.cubin {file}");
        File.Delete(file);
        File.Delete(file + ".cubin");
        Assert.That(code, Is.Zero, $"ptxas rejected {kernel.Name}:\n{output}");
    }

    [TestCaseSource(nameof(Kernels))]
    public void OpenCLPassesClang(MethodInfo kernel)
    {
        var source = Compile(kernel, ptx: false);
        RequireTool("clang");
        var file = TempFile(kernel, ".cl", source);
        var (code, output) = Run("clang", $"-x cl -cl-std=CL2.0 -fsyntax-only {file}");
        File.Delete(file);
        Assert.That(code, Is.Zero, $"clang rejected the OpenCL C of {kernel.Name}:\n{output}");
    }

    /// <summary>The kernel's PTX or OpenCL C, compiled once per test run in its own context.</summary>
    static string Compile(MethodInfo kernel, bool ptx)
    {
        lock (Gate)
        {
            if (Compiled.TryGetValue((kernel, ptx), out var text))
                return text;
            using var context = Context.Create(b => b.EnableAlgorithms().Optimize(OptimizationLevel.O2));
            using Backend backend = ptx
                ? new PTXBackend(context, CudaArchitecture.SM_90, CudaInstructionSet.ISA_80, null!)
                : new CLBackend(context,
                    new CLCapabilityContext(float16: false, float64: false, genericAddressSpace: true, int64_Atomics: true, subGroups: false),
                    CLDeviceVendor.Other, CLCVersion.CL20);
            var compiled = backend.Compile(EntryPointDescription.FromExplicitlyGroupedKernel(kernel), default(KernelSpecialization));
            text = ptx ? ((PTXCompiledKernel)compiled).PTXAssembly : ((CLCompiledKernel)compiled).Source;
            Compiled[(kernel, ptx)] = text;
            return text;
        }
    }

    static readonly Dictionary<string, bool> Tools = [];

    static void RequireTool(string tool)
    {
        bool found;
        lock (Gate)
        {
            if (!Tools.TryGetValue(tool, out found))
                Tools[tool] = found = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
                    .Any(dir => dir.Length > 0 && File.Exists(Path.Combine(dir, tool)));
        }
        if (!found)
            Assert.Ignore($"{tool} is not on PATH; the compile itself was checked by the other test.");
    }

    /// <summary>ILGPU's OpenCL C is self-contained (its own typedefs and pragmas): clang needs no prelude.</summary>
    static string TempFile(MethodInfo kernel, string extension, string text)
    {
        var dir = Path.Combine(Path.GetTempPath(), "sdd-crosscompile");
        Directory.CreateDirectory(dir);
        var file = Path.Combine(dir, $"{kernel.DeclaringType!.Name}.{kernel.Name}.{Environment.ProcessId}{extension}");
        File.WriteAllText(file, text);
        return file;
    }

    static (int Code, string Output) Run(string tool, string arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(tool, arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout + stderr.Result);
    }
}
