using ILGPU;
using ILGPU.Runtime;
using NUnit.Framework;
using SddIlgpu.Tensors;
using Device = SddIlgpu.Tensors.Device;
using SddIlgpu.Tensors.Kernels;

namespace SddIlgpu.Tests.Tensors;

/// <summary>A kernel ILGPU cannot compile fails fast with the kernel's name and ILGPU's reason.</summary>
public sealed class KernelCompileFailureTests
{
    // Math.Clamp throws on bad bounds, and ILGPU 1.5.3 rejects the Throw instruction inside kernels.
    static void ClampingKernel(ArrayView<float> y, float lo)
    {
        for (var i = Grid.GlobalIndex.X; i < y.IntLength; i += Grid.DimX * Group.DimX)
            y[i] = Math.Clamp(y[i], lo, 1f);
    }

    [Test]
    public void AnUncompilableKernelIsNamedWithTheCause()
    {
        // A device of its own: a failed compile poisons the ILGPU context, so the shared test devices stay clean.
        using var device = Device.Open("ilgpu-cpu");
        var e = Assert.Throws<KernelCompilationException>(() =>
            device.Load(nameof(ClampingKernel), a => a.LoadKernel<ArrayView<float>, float>(ClampingKernel)))!;
        Assert.That(e.Kernel, Is.EqualTo(nameof(ClampingKernel)));
        Assert.That(e.Message, Does.Contain("Kernel 'ClampingKernel' did not compile for ilgpu-cpu"));
        Assert.That(e.Message, Does.Contain("Throw").Or.Contain("throw"), "ILGPU's own reason is part of the message");
    }
}
