// SwiGLU over the (R, 2F) [up | gate] layout (spec §3): s = up ⊙ silu(gate), silu(z) = z·σ(z); backward
// dUp = dS·silu(gate), dGate = dS·up·σ(gate)·(1 + gate·(1 − σ(gate))). ConcatLast/SplitLast copy the two
// column blocks of a row. Every kernel is a grid-stride loop over output elements.
using ILGPU;
using ILGPU.Runtime;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Kernels;

internal sealed class ActivationKernels : IActivationOps
{
    readonly Device device;
    readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, int> swiGluForward;
    readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int> swiGluBackward;
    readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int> concat;
    readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int> split;

    public ActivationKernels(Device device)
    {
        this.device = device;
        swiGluForward = device.Load(nameof(SwiGluForwardKernel), a => a.LoadKernel<ArrayView<float>, ArrayView<float>, int>(SwiGluForwardKernel));
        swiGluBackward = device.Load(nameof(SwiGluBackwardKernel), a => a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(SwiGluBackwardKernel));
        concat = device.Load(nameof(ConcatLastKernel), a => a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(ConcatLastKernel));
        split = device.Load(nameof(SplitLastKernel), a => a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(SplitLastKernel));
    }

    public void SwiGluForward(Tensor upGate, Tensor s)
    {
        var hidden = Hidden("SwiGlu.Forward", upGate, s);
        swiGluForward(device.Launching(), device.GridStride(s.Length), upGate.View, s.View, hidden);
    }

    public void SwiGluBackward(Tensor dS, Tensor upGate, Tensor dUpGate)
    {
        var hidden = Hidden("SwiGlu.Backward", upGate, dS);
        KernelInfra.SameLength(upGate, dUpGate, "SwiGlu.Backward");
        swiGluBackward(device.Launching(), device.GridStride(dS.Length), dS.View, upGate.View, dUpGate.View, hidden);
    }

    public void ConcatLast(Tensor a, Tensor b, Tensor y)
    {
        var (na, nb) = Blocks("ConcatLast", a, b, y);
        concat(device.Launching(), device.GridStride(y.Length), a.View, b.View, y.View, na, nb);
    }

    public void SplitLast(Tensor y, Tensor a, Tensor b)
    {
        var (na, nb) = Blocks("SplitLast", a, b, y);
        split(device.Launching(), device.GridStride(y.Length), y.View, a.View, b.View, na, nb);
    }

    /// <summary>F, checking upGate is (R, 2F) and s is (R, F).</summary>
    static int Hidden(string op, Tensor upGate, Tensor s)
    {
        KernelInfra.IntLength(upGate, op);
        var hidden = s.Shape.Last;
        if (upGate.Shape.Last != 2 * hidden || upGate.Length != 2 * s.Length)
            throw new ArgumentException($"{op}: {upGate.Name} {upGate.Shape} must be (R, 2F) for {s.Name} {s.Shape} = (R, F).");
        return hidden;
    }

    static (int Na, int Nb) Blocks(string op, Tensor a, Tensor b, Tensor y)
    {
        KernelInfra.IntLength(y, op);
        int na = a.Shape.Last, nb = b.Shape.Last;
        var rows = y.Shape.Rows;
        if (y.Shape.Last != na + nb || a.Shape.Rows != rows || b.Shape.Rows != rows)
            throw new ArgumentException($"{op}: {y.Name} {y.Shape} must be (R, Na + Nb) for {a.Name} {a.Shape} = (R, Na) and {b.Name} {b.Shape} = (R, Nb).");
        return (na, nb);
    }

    static float Sigmoid(float z) => 1f / (1f + MathF.Exp(-z));

    [Kernel]
    internal static void SwiGluForwardKernel(ArrayView<float> upGate, ArrayView<float> s, int hidden)
    {
        for (var k = KernelInfra.GlobalStart; k < s.IntLength; k += KernelInfra.GlobalStride)
        {
            var row = k / hidden;
            var up = upGate[k + row * hidden];
            var gate = upGate[k + (row + 1) * hidden];
            s[k] = up * (gate * Sigmoid(gate));
        }
    }

    /// <summary>Reads up and gate before writing their gradients, so dUpGate may alias upGate.</summary>
    [Kernel]
    internal static void SwiGluBackwardKernel(ArrayView<float> dS, ArrayView<float> upGate, ArrayView<float> dUpGate, int hidden)
    {
        for (var k = KernelInfra.GlobalStart; k < dS.IntLength; k += KernelInfra.GlobalStride)
        {
            var row = k / hidden;
            var upAt = k + row * hidden;
            var gateAt = upAt + hidden;
            var up = upGate[upAt];
            var gate = upGate[gateAt];
            var sig = Sigmoid(gate);
            var d = dS[k];
            dUpGate[upAt] = d * (gate * sig);
            dUpGate[gateAt] = d * up * sig * (1f + gate * (1f - sig));
        }
    }

    [Kernel]
    internal static void ConcatLastKernel(ArrayView<float> a, ArrayView<float> b, ArrayView<float> y, int na, int nb)
    {
        var width = na + nb;
        for (var k = KernelInfra.GlobalStart; k < y.IntLength; k += KernelInfra.GlobalStride)
        {
            var row = k / width;
            var col = k - row * width;
            y[k] = col < na ? a[row * na + col] : b[row * nb + col - na];
        }
    }

    [Kernel]
    internal static void SplitLastKernel(ArrayView<float> y, ArrayView<float> a, ArrayView<float> b, int na, int nb)
    {
        var width = na + nb;
        for (var k = KernelInfra.GlobalStart; k < y.IntLength; k += KernelInfra.GlobalStride)
        {
            var row = k / width;
            var col = k - row * width;
            if (col < na)
                a[row * na + col] = y[k];
            else
                b[row * nb + col - na] = y[k];
        }
    }
}
