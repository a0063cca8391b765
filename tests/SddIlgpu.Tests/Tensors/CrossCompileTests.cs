// Every [Kernel] method of SddIlgpu.Tensors compiled without a GPU for CUDA (PTX ISA 7.8 for sm_90) and OpenCL C 2.0
// at O2, each in a fresh ILGPU Context (KernelCatalog). The PTX must not call out (.extern .func) or use f64; the
// OpenCL C must not use __generic (what lets opencl accept devices without the generic address space). Where
// NVIDIA's ptxas (CI fetches it: .ci/fetch-ptxas.sh) / clang exist, they assemble the PTX for sm_80 and sm_90 /
// validate the OpenCL C (design §2).
using System.Diagnostics;
using System.Reflection;
using NUnit.Framework;
using SddIlgpu.Tensors.Kernels;

namespace SddIlgpu.Tests.Tensors;

public sealed class CrossCompileTests
{
    static readonly Dictionary<(MethodInfo, bool), string> Compiled = [];
    static readonly Lock Gate = new();

    public static IEnumerable<TestCaseData> Kernels() =>
        KernelCatalog.All.Select(m => new TestCaseData(m).SetArgDisplayNames(KernelCatalog.Name(m)));

    /// <summary>Every kernel for each GPU architecture the kit targets: A100 (sm_80) and H100 (sm_90).</summary>
    public static IEnumerable<TestCaseData> KernelsAndArchitectures() =>
        from m in KernelCatalog.All
        from arch in new[] { "sm_80", "sm_90" }
        select new TestCaseData(m, arch).SetArgDisplayNames(KernelCatalog.Name(m), arch);

    [Test]
    public void FindsTheKernels() => Assert.That(KernelCatalog.All, Has.Count.GreaterThanOrEqualTo(20));

    [TestCaseSource(nameof(Kernels))]
    public void CompilesToPtxWithoutCallsOrDoubles(MethodInfo kernel)
    {
        var ptx = Compile(kernel, ptx: true);
        Assert.That(ptx, Does.Contain(".entry"), "PTX has an entry point");
        Assert.That(ptx, Does.Contain(".version 7.8"), "PTX ISA 7.8, the newest CUDA 11.8's ptxas accepts");
        Assert.That(ptx, Does.Not.Contain(".extern .func"), "PTX calls an unresolved function");
        // A double shows as a .f64 type suffix (e.g. cvt.f64.f32); registers named %f64 are float registers.
        Assert.That(System.Text.RegularExpressions.Regex.IsMatch(ptx, @"\.f64\b"), Is.False, "PTX uses double precision");
    }

    /// <summary>
    /// OpenCL C without <c>__generic</c>: ILGPU writes it at O1 for every kernel, and devices without the generic
    /// address space (PoCL, NVIDIA's OpenCL) reject it; OpenClAcceptance accepts those devices because of this test.
    /// </summary>
    [TestCaseSource(nameof(Kernels))]
    public void CompilesToOpenCLWithoutTheGenericAddressSpace(MethodInfo kernel)
    {
        var source = Compile(kernel, ptx: false);
        Assert.That(source, Does.Contain("kernel"), "OpenCL C has a kernel");
        Assert.That(source, Does.Not.Contain("__generic"), "OpenCL C uses the generic address space");
    }

    [TestCaseSource(nameof(KernelsAndArchitectures))]
    public void PtxAssembles(MethodInfo kernel, string arch)
    {
        var ptx = Compile(kernel, ptx: true);
        var ptxas = RequireTool("ptxas");
        var file = TempFile(kernel, $".{arch}.ptx", ptx);
        var (code, output) = Run(ptxas, $"-arch={arch} -o {file}.cubin {file}");
        File.Delete(file);
        File.Delete(file + ".cubin");
        Assert.That(code, Is.Zero, $"ptxas -arch={arch} rejected {kernel.Name}:\n{output}");
    }

    [TestCaseSource(nameof(Kernels))]
    public void OpenCLPassesClang(MethodInfo kernel)
    {
        var source = Compile(kernel, ptx: false);
        var clang = RequireTool("clang");
        var file = TempFile(kernel, ".cl", source);
        var (code, output) = Run(clang, $"-x cl -cl-std=CL2.0 -fsyntax-only {file}");
        File.Delete(file);
        Assert.That(code, Is.Zero, $"clang rejected the OpenCL C of {kernel.Name}:\n{output}");
    }

    /// <summary>The kernel's PTX or OpenCL C, compiled once per test run.</summary>
    static string Compile(MethodInfo kernel, bool ptx)
    {
        lock (Gate)
        {
            if (!Compiled.TryGetValue((kernel, ptx), out var text))
                Compiled[(kernel, ptx)] = text = ptx ? KernelCatalog.CompilePtx(kernel) : KernelCatalog.CompileOpenCL(kernel);
            return text;
        }
    }

    static string RequireTool(string tool)
    {
        var path = KernelCatalog.FindTool(tool);
        if (path is null)
            Assert.Ignore($"{tool} is not on PATH (CI fetches ptxas with .ci/fetch-ptxas.sh); the compile itself was checked by the other test.");
        return path!;
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
