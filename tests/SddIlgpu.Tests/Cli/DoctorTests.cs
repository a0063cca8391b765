// `sdd doctor` on cpu and opencl: every op check and every golden model step passes (exit 0, each row present);
// and a deliberately broken op (RMS norm forward off by 0.1 %) is reported as FAIL with exit code 1.
using NUnit.Framework;
using SddIlgpu.Cli;
using SddIlgpu.Layers;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;
using SddIlgpu.Tests.Support;
using SddIlgpu.Training.Conformance;

namespace SddIlgpu.Tests.Cli;

[TestFixture]
public sealed class DoctorTests
{
    static (int Exit, string[] Lines) Doctor(Func<Device, OpSet>? opsFor, params string[] args)
    {
        var output = new StringWriter();
        var exit = DoctorCommand.Run(args, output, opsFor);
        TestContext.Out.WriteLine(output.ToString());
        return (exit, output.ToString().Split('\n', StringSplitOptions.TrimEntries));
    }

    static string Row(string[] lines, string check) =>
        lines.SingleOrDefault(l => l.StartsWith(check + " ", StringComparison.Ordinal)) ?? throw new AssertionException($"no row for '{check}'");

    /// <summary>
    /// Every op check and every golden fixture passes, each row present. opencl runs where an OpenCL device is
    /// (PoCL in CI): the doctor is what a user runs on a device we never tested, so CI runs it on one.
    /// </summary>
    [TestCase("cpu")]
    [TestCase("opencl")]
    public void DoctorPassesEveryOpAndEveryGoldenFixture(string deviceName)
    {
        var device = TestDevices.Get(deviceName); // ignored here when the machine has no such device
        var (exit, lines) = Doctor(null, "--device", deviceName, "--golden", SharedPaths.Golden);
        Assert.That(exit, Is.Zero, "exit code");
        Assert.That(lines, Has.Some.StartsWith("device     " + device.Name));
        Assert.That(lines, Has.Some.StartsWith("ILGPU      " + Device.IlgpuVersion));
        foreach (var check in ConformanceRunner.OpCheckNames)
            Assert.That(Row(lines, check), Does.EndWith("pass"), check);
        foreach (var fixture in Directory.GetFiles(SharedPaths.Golden, "*.safetensors"))
        {
            var steps = AdamWSteps(fixture);
            foreach (var part in new[] { "logits+loss", "gradients", $"adamw x{steps}" })
                Assert.That(Row(lines, $"golden {Path.GetFileNameWithoutExtension(fixture)} {part}"), Does.Contain("pass"));
        }
    }

    /// <summary>The number of AdamW steps a golden fixture records (its <c>adamw_steps</c> metadata).</summary>
    static int AdamWSteps(string fixture)
    {
        var steps = int.Parse(Safetensors.Read(fixture).Metadata["adamw_steps"], System.Globalization.CultureInfo.InvariantCulture);
        Assert.That(steps, Is.Positive, $"{fixture}: adamw_steps");
        return steps;
    }

    [Test]
    public void ABrokenOpIsReportedAsFailAndTheExitCodeIsNonZero()
    {
        static OpSet Broken(Device d) => new()
        {
            Gemm = d.Ops.Gemm, Norm = new OffByATenthPercent(d.Ops.Norm, d.Ops.Elementwise), Rope = d.Ops.Rope,
            Attention = d.Ops.Attention, Activation = d.Ops.Activation, Embedding = d.Ops.Embedding, Loss = d.Ops.Loss,
            Elementwise = d.Ops.Elementwise, Reduction = d.Ops.Reduction, Optimizer = d.Ops.Optimizer, Random = d.Ops.Random,
        };
        var (exit, lines) = Doctor(Broken, "--device", "cpu", "--ops-only");
        Assert.That(exit, Is.EqualTo(1), "exit code");
        Assert.That(Row(lines, "rms norm forward"), Does.Contain("FAIL"));
        Assert.That(Row(lines, "rms norm gainless fwd+bwd"), Does.Contain("FAIL"));
        Assert.That(Row(lines, "gemm NN"), Does.EndWith("pass"));
        Assert.That(Row(lines, "rms norm backward"), Does.EndWith("pass"), "backward reads rstd, not y");
        Assert.That(lines, Has.Some.Contains("FAILED on cpu"));
    }

    [Test]
    public void AnOpThatThrowsIsAFailureNotACrash()
    {
        var device = TestDevices.Get("cpu");
        var ops = new OpSet
        {
            Gemm = new Throwing(), Norm = device.Ops.Norm, Rope = device.Ops.Rope, Attention = device.Ops.Attention,
            Activation = device.Ops.Activation, Embedding = device.Ops.Embedding, Loss = device.Ops.Loss,
            Elementwise = device.Ops.Elementwise, Reduction = device.Ops.Reduction, Optimizer = device.Ops.Optimizer, Random = device.Ops.Random,
        };
        var results = ConformanceRunner.RunOps(device, ops);
        var gemm = results.Where(r => r.Name.StartsWith("gemm", StringComparison.Ordinal)).ToList();
        Assert.That(gemm, Has.Count.EqualTo(5).And.All.Matches<CheckResult>(r => !r.Passed && r.Note!.Contains("broken on purpose")));
        Assert.That(results.Where(r => !r.Name.StartsWith("gemm", StringComparison.Ordinal)), Has.All.Matches<CheckResult>(r => r.Passed));
    }

    /// <summary>A wrong RMS norm: the forward output scaled by 1.001.</summary>
    sealed class OffByATenthPercent(INormOps inner, IElementwiseOps elementwise) : INormOps
    {
        public void Forward(Tensor x, Tensor? gain, Tensor y, Tensor rstd, int groupSize, float eps)
        {
            inner.Forward(x, gain, y, rstd, groupSize, eps);
            elementwise.Scale(y, 1.001f, y);
        }

        public void Backward(Tensor dY, Tensor x, Tensor? gain, Tensor rstd, Tensor dX, Tensor? dGain, int groupSize) =>
            inner.Backward(dY, x, gain, rstd, dX, dGain, groupSize);
    }

    sealed class Throwing : IGemmOps
    {
        public void Gemm(in GemmSpec spec, Tensor a, in MatrixLayout la, Tensor b, in MatrixLayout lb, Tensor c, in MatrixLayout lc) =>
            throw new InvalidOperationException("broken on purpose");
    }
}
