// The opencl device on OpenCL 3.0 runtimes without the generic address space (PoCL in CI): listed as usable with
// the note saying how it was accepted, opened with ILGPU's capability overridden, never picked by `auto` when it
// is a CPU, and launch recording (the kernel report's replay) sees every launch the device counts.
using NUnit.Framework;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Kernels;
using SddIlgpu.Tensors.Ops;
using SddIlgpu.Tests.Support;

namespace SddIlgpu.Tests.Tensors;

public sealed class OpenClDeviceTests
{
    static DeviceInfo OpenClOrIgnore() =>
        Device.List().FirstOrDefault(d => d.Kind == BackendKind.OpenCL && d.Usable)
        ?? throw new IgnoreException("No usable OpenCL device here (CI installs pocl-opencl-icd).");

    [Test]
    public void ADeviceWithoutTheGenericAddressSpaceIsListedWithHowItWasAccepted()
    {
        var info = OpenClOrIgnore();
        var device = TestDevices.Get("opencl");
        Assert.That(device.Kind, Is.EqualTo(BackendKind.OpenCL));
        Assert.That(device.Accelerator.AcceleratorType, Is.EqualTo(ILGPU.Runtime.AcceleratorType.OpenCL));
        if (info.Note is null)
            Assert.Ignore($"{info.Description} has the generic address space; the override is not needed there.");
        Assert.That(info.Note, Is.EqualTo(OpenClAcceptance.OverrideNote));
        Assert.That(info.Reason, Is.Null);
    }

    [Test]
    public void AutoNeverPicksAnOpenClCpuDevice()
    {
        var infos = Device.List();
        if (!infos.Any(d => d.Kind == BackendKind.OpenCL && d.Usable && !d.IsGpu))
            Assert.Ignore("No OpenCL CPU device (PoCL) here.");
        if (infos.Any(d => d.Usable && d.IsGpu))
            Assert.Ignore("A GPU is present; auto picks it.");
        using var device = Device.Open("auto");
        Assert.That(device.Kind, Is.EqualTo(BackendKind.Cpu), "the managed cpu path outruns PoCL on a CPU");
    }

    [Test]
    public void OpenClCompilesAtO2() => Assert.That(OpenClAcceptance.Optimization, Is.EqualTo(ILGPU.OptimizationLevel.O2));

    [Test]
    public void ReplayRecordsEveryLaunchAndRunsNone()
    {
        var recorder = new LaunchRecorder(dry: true);
        using var device = Device.OpenLaunchReplay(LaunchGeometry.H100, recorder);
        var y = device.AllocateTensor(new Shape(1000), "y");
        var before = device.Counters.Snapshot();
        device.Ops.Elementwise.Fill(y, 3f);
        device.Ops.Elementwise.Add(y, y, y);
        Assert.That((device.Counters.Snapshot() - before).Launches, Is.EqualTo(2));
        Assert.That(recorder.Launches.Select(l => l.Kernel), Is.EqualTo(new[] { "FillKernel", "AddKernel" }));
        // Sized like an H100: 256-thread groups, ⌈1000 / 256⌉ = 4 groups (below 8 per SM × 132 SMs).
        Assert.That(recorder.Launches.Select(l => (l.Groups, l.GroupSize)), Has.All.EqualTo((4L, 256)));
        Assert.That(y.ToArray(), Has.All.EqualTo(0f), "a dry replay runs no kernel");
    }
    [Test]
    public void ReplayShapesCooperativeLaunchesLikeTheGpuItStandsFor()
    {
        // The replay device is a CPU accelerator; the cooperative kernels' group size and grid must follow the
        // replayed GPU (256 threads, up to 32 groups per SM), not the CPU accelerator's warp of 16 and its cores.
        var recorder = new LaunchRecorder(dry: true);
        using var device = Device.OpenLaunchReplay(LaunchGeometry.H100, recorder);
        var x = device.AllocateTensor(new Shape(16384, 384), "x");
        var y = device.AllocateTensor(new Shape(16384, 384), "y");
        var rstd = device.AllocateTensor(new Shape(16384), "rstd");
        var sum = device.AllocateTensor(new Shape(1), "sum");
        device.Ops.Reduction.SumSquares(x, sum, 0);
        device.Ops.Norm.Forward(x, null, y, rstd, 384, 1e-5f);
        // Reduction: 512 partial groups, then one finishing group over the 512 partials.
        // RMS norm over rows of 384: teams of 64 lanes (64 · 8 ≥ 384), 4 rows per group → 16,384 / 4 = 4,096 groups.
        Assert.That(recorder.Launches.Select(l => (l.Kernel, l.Groups, l.GroupSize)), Is.EqualTo(new[]
        {
            ("PartialSumKernel", 512L, 256), ("FinishKernel", 1L, 256), ("RmsNormForwardKernel", 4096L, 256),
        }));
    }

    [Test]
    public void WeightGradientsSplitKSoAnH100GetsTwoGroupsPerMultiprocessor()
    {
        // dW += Xᵀ·dY at baby-gpt sizes: 384 × 384 is 9 tiles of 128 and K = B·T = 16,384; without split-K 9 groups
        // would leave 123 of 132 SMs idle. 30 ranges of 552 (a multiple of the 8-wide k-slice) give 270 groups,
        // then one grid-stride sum of the 30 partials per output.
        var recorder = new LaunchRecorder(dry: true);
        using var device = Device.OpenLaunchReplay(LaunchGeometry.H100, recorder);
        device.Kernels.Gemm.UseSimple = false;
        var x = device.AllocateTensor(new Shape(16384, 384), "x");
        var dY = device.AllocateTensor(new Shape(16384, 384), "dY");
        var dW = device.AllocateTensor(new Shape(384, 384), "dW");
        var spec = new GemmSpec(384, 384, 16384, TransA: true, Beta: 1f);
        Assert.That(device.Kernels.Gemm.SplitsOf(spec), Is.EqualTo(30));
        device.Ops.Gemm.Gemm(spec, x, new(384), dY, new(384), dW, new(384));
        Assert.That(recorder.Launches.Select(l => l.Kernel), Is.EqualTo(new[] { "BlockedKernel", "SplitKSumKernel" }));
        Assert.That(recorder.Launches[0].Groups, Is.EqualTo(270L));
        Assert.That(recorder.Launches[1].Groups, Is.GreaterThanOrEqualTo(2L * LaunchGeometry.H100.Multiprocessors));
        // The head's dW (V 65 × C 384) takes the tiled kernel: 2 × 6 tiles of 64, 22 ranges → 264 groups.
        Assert.That(device.Kernels.Gemm.SplitsOf(new GemmSpec(65, 384, 16384, TransA: true, Beta: 1f)), Is.EqualTo(22));
        // A product with as many tiles as SMs is not split; nor is a batched one.
        Assert.That(device.Kernels.Gemm.SplitsOf(new GemmSpec(16384, 1536, 384)), Is.EqualTo(1));
        Assert.That(device.Kernels.Gemm.SplitsOf(spec with { BatchOuter = 2 }), Is.EqualTo(1));
    }
}
