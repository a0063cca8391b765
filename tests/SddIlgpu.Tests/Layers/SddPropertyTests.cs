// Properties of the SDD layer (arXiv 2502.15499 Eq. 13; research/sdd-paper.md §5 Exp 0): its output and input
// gradient do not change when V is scaled, and through 16 stacked SDD layers the input-gradient norm stays
// within [0.3, 3] of the output-gradient norm for any V scale, while plain layers vanish or explode.
using NUnit.Framework;
using SddIlgpu.Layers;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;
using SddIlgpu.Tests.Support;

namespace SddIlgpu.Tests.Layers;

[TestFixtureSource(typeof(LayerDevices), nameof(LayerDevices.All))]
public sealed class SddPropertyTests(string deviceName)
{
    const int Rows = 8, Width = 48, Depth = 16;

    /// <summary>Depth layers of (V (n, n), α (n)) in two arenas, V truncated normal with the given std, α = 1.</summary>
    sealed class Stack : IDisposable
    {
        readonly Arena values, grads;

        public Stack(Device device, int depth, double std, ulong seed)
        {
            values = device.Allocate(depth * (Width * Width + Width), "stack");
            grads = device.Allocate(depth * (Width * Width + Width), "stack.grads");
            for (var i = 0; i < depth; i++)
            {
                var v = new Parameter($"v{i}", ParamKind.Matrix, values.Take((Width, Width)), grads.Take((Width, Width)));
                var a = new Parameter($"a{i}", ParamKind.AlphaOut, values.Take(Width), grads.Take(Width));
                var h = new float[Width * Width];
                SddIlgpu.Tensors.Random.Philox.FillTruncatedNormal(h, seed, (ulong)i, std);
                v.Value.Upload(h);
                a.Value.Upload(Enumerable.Repeat(1f, Width).ToArray());
                V.Add(v);
                Alpha.Add(a);
            }
        }

        public List<Parameter> V { get; } = [];
        public List<Parameter> Alpha { get; } = [];

        public void Dispose()
        {
            values.Dispose();
            grads.Dispose();
        }
    }

    /// <summary>‖dX‖ / ‖dOut‖ through the stack, SDD or plain.</summary>
    static double GradientRatio(Device device, OpSet ops, double std, bool sdd)
    {
        using var stack = new Stack(device, Depth, std, 11);
        using var act = device.Allocate((Depth + 1) * Rows * Width * 2 + Depth * SddLinear.ActivationLength(Rows, Width), "act");
        var xs = Enumerable.Range(0, Depth + 1).Select(i => act.Take((Rows, Width), $"x{i}")).ToArray();
        var ds = Enumerable.Range(0, Depth + 1).Select(i => act.Take((Rows, Width), $"d{i}")).ToArray();
        var sddLayers = Enumerable.Range(0, Depth).Select(i =>
            new SddLinear(ops, stack.V[i], stack.Alpha[i], SddComposition.Paper, 1e-5f, act, Rows, $"l{i}")).ToArray();
        var plain = stack.V.Select(v => new Linear(ops, v)).ToArray();
        var x0 = Check.Random(Rows * Width, 3);
        var rms = Math.Sqrt(x0.Average(v => (double)v * v));
        xs[0].Upload(x0.Select(v => (float)(v / rms)).ToArray());
        for (var i = 0; i < Depth; i++)
            if (sdd)
                sddLayers[i].Forward(xs[i], xs[i + 1]);
            else
                plain[i].Forward(xs[i], xs[i + 1]);
        var dOut = Check.Random(Rows * Width, 4);
        ds[Depth].Upload(dOut);
        for (var i = Depth - 1; i >= 0; i--)
            if (sdd)
                sddLayers[i].Backward(ds[i + 1], xs[i], ds[i]);
            else
                plain[i].Backward(ds[i + 1], xs[i], ds[i]);
        static double Norm(float[] a) => Math.Sqrt(a.Sum(v => (double)v * v));
        return Norm(ds[0].ToArray()) / Norm(dOut);
    }

    [TestCase(0.1)]
    [TestCase(1.0)]
    [TestCase(10.0)]
    public void SddStackKeepsTheInputGradientWhilePlainVanishesOrExplodes(double factor)
    {
        var (device, ops) = LayerDevices.Get(deviceName);
        var std = factor / Math.Sqrt(2.5 * Width);
        var sdd = GradientRatio(device, ops, std, sdd: true);
        var plain = GradientRatio(device, ops, std, sdd: false);
        TestContext.Out.WriteLine($"V std {factor}/sqrt(2.5n): SDD ratio {sdd:G4}, plain ratio {plain:G4}");
        Assert.That(sdd, Is.InRange(0.3, 3), "SDD stack input/output gradient-norm ratio");
        Assert.That(Math.Abs(Math.Log10(plain)), Is.GreaterThan(2), "plain stack changes the gradient by orders of magnitude");
    }

    // eps (1e-5 added to mean(z²) ≈ 0.4 at c = 1) moves the unscaled layer by eps/(2·0.4) ≈ 1.3e-5 relative;
    // beyond that the outputs agree to float rounding (a plain layer would change by a factor c)
    [TestCase(3f)]
    [TestCase(100f)]
    public void SddLayerIsInvariantToTheScaleOfV(float c)
    {
        var (device, ops) = LayerDevices.Get(deviceName);
        using var stack = new Stack(device, 2, 1 / Math.Sqrt(2.5 * Width), 21);
        var v = stack.V[0].Value.ToArray();
        stack.V[1].Value.Upload(v.Select(x => x * c).ToArray());
        var alpha = Check.Random(Width, 5).Select(a => 1 + 0.3f * a).ToArray();
        stack.Alpha[0].Value.Upload(alpha);
        stack.Alpha[1].Value.Upload(alpha);
        using var act = device.Allocate(6 * Rows * Width + 2 * SddLinear.ActivationLength(Rows, Width), "act");
        var x = act.Take((Rows, Width), "x");
        var dY = act.Take((Rows, Width), "dY");
        var (y0, y1, d0, d1) = (act.Take((Rows, Width)), act.Take((Rows, Width)), act.Take((Rows, Width)), act.Take((Rows, Width)));
        x.Upload(Check.Random(Rows * Width, 6, 1.7f));
        dY.Upload(Check.Random(Rows * Width, 7));
        var l0 = new SddLinear(ops, stack.V[0], stack.Alpha[0], SddComposition.Code, 1e-5f, act, Rows, "l0");
        var l1 = new SddLinear(ops, stack.V[1], stack.Alpha[1], SddComposition.Code, 1e-5f, act, Rows, "l1");
        l0.Forward(x, y0);
        l1.Forward(x, y1);
        l0.Backward(dY, x, d0);
        l1.Backward(dY, x, d1);
        static double[] D(Tensor t) => t.ToArray().Select(a => (double)a).ToArray();
        double eY = Check.RelativeNormError(y1.ToArray(), D(y0)), eX = Check.RelativeNormError(d1.ToArray(), D(d0)),
            eA = Check.RelativeNormError(stack.Alpha[1].Grad.ToArray(), D(stack.Alpha[0].Grad));
        TestContext.Out.WriteLine($"V·{c}: relative change of y {eY:G3}, dX {eX:G3}, dα {eA:G3}");
        Assert.That(eY, Is.LessThan(1e-4), $"output with V·{c}");
        Assert.That(eX, Is.LessThan(1e-4), $"input gradient with V·{c}");
        Assert.That(eA, Is.LessThan(1e-4), $"dα with V·{c}");
        Assert.That(D(y0).Max(Math.Abs), Is.GreaterThan(0.1), "the output is not trivially zero");
    }
}
