// RMS norm over groups of the last axis (spec §3): y = g ⊙ x·rstd, rstd = 1/sqrt(mean(x²) + eps), with
// one gain of groupSize shared by every group (or none). Backward: dX = rstd·(g ⊙ dY − x·rstd²·Σ(g·dY·x)/n),
// dGain += Σ over groups of dY ⊙ x·rstd, one thread per gain element looping groups in order (no atomics).
using ILGPU;
using ILGPU.Runtime;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Kernels;

/// <summary>Sizes of one norm launch: Groups groups of GroupSize contiguous values.</summary>
internal readonly struct NormShape(int groups, int groupSize, int hasGain)
{
    public readonly int Groups = groups;
    public readonly int GroupSize = groupSize;

    /// <summary>1 when a gain is given, 0 for the gainless norm (the gain view is then a placeholder).</summary>
    public readonly int HasGain = hasGain;
}

internal sealed class NormKernels : INormOps
{
    readonly Device device;
    readonly Action<AcceleratorStream, KernelConfig, NormShape, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, float> forward;
    readonly Action<AcceleratorStream, KernelConfig, NormShape, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> backwardInput;
    readonly Action<AcceleratorStream, KernelConfig, NormShape, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> backwardGain;

    public NormKernels(Device device)
    {
        this.device = device;
        forward = device.Load(nameof(RmsNormForwardKernel), a => a.LoadKernel<NormShape, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, float>(RmsNormForwardKernel));
        backwardInput = device.Load(nameof(RmsNormBackwardInputKernel), a => a.LoadKernel<NormShape, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(RmsNormBackwardInputKernel));
        backwardGain = device.Load(nameof(RmsNormBackwardGainKernel), a => a.LoadKernel<NormShape, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(RmsNormBackwardGainKernel));
    }

    public void Forward(Tensor x, Tensor? gain, Tensor y, Tensor rstd, int groupSize, float eps)
    {
        var shape = Validate("RmsNorm.Forward", x, gain, rstd, groupSize);
        KernelInfra.SameLength(x, y, "RmsNorm.Forward");
        forward(device.Launching(), device.GridStride(shape.Groups), shape,
            x.View, (gain ?? x).View, y.View, rstd.View, eps);
    }

    public void Backward(Tensor dY, Tensor x, Tensor? gain, Tensor rstd, Tensor dX, Tensor? dGain, int groupSize)
    {
        var shape = Validate("RmsNorm.Backward", x, gain, rstd, groupSize);
        KernelInfra.SameLength(x, dY, "RmsNorm.Backward");
        KernelInfra.SameLength(x, dX, "RmsNorm.Backward");
        if ((gain is null) != (dGain is null))
            throw new ArgumentException("RmsNorm.Backward: dGain must be given exactly when gain is.");
        // dGain first: it reads dY, which dX may alias and overwrite.
        if (gain is not null && dGain is not null)
        {
            KernelInfra.SameLength(gain, dGain, "RmsNorm.Backward");
            backwardGain(device.Launching(), device.GridStride(groupSize), shape, dY.View, x.View, rstd.View, dGain.View);
        }
        backwardInput(device.Launching(), device.GridStride(shape.Groups), shape,
            dY.View, x.View, (gain ?? x).View, rstd.View, dX.View);
    }

    static NormShape Validate(string op, Tensor x, Tensor? gain, Tensor rstd, int groupSize)
    {
        var width = x.Shape.Last;
        if (groupSize <= 0 || width % groupSize != 0)
            throw new ArgumentException($"{op}: group size {groupSize} must divide the last axis of {x.Name} {x.Shape}.");
        if (gain is not null && gain.Length != groupSize)
            throw new ArgumentException($"{op}: gain {gain.Name} {gain.Shape} must have {groupSize} values (one per group element).");
        var groups = KernelInfra.IntLength(x, op) / groupSize;
        if (rstd.Length != groups)
            throw new ArgumentException($"{op}: rstd {rstd.Name} {rstd.Shape} must have {groups} values (one per group of {x.Name} {x.Shape}).");
        return new NormShape(groups, groupSize, gain is null ? 0 : 1);
    }

    /// <summary>One thread per group: sum of squares in index order, then y = g·x·rstd.</summary>
    [Kernel]
    internal static void RmsNormForwardKernel(NormShape s, ArrayView<float> x, ArrayView<float> gain, ArrayView<float> y,
        ArrayView<float> rstd, float eps)
    {
        for (var grp = KernelInfra.GlobalStart; grp < s.Groups; grp += KernelInfra.GlobalStride)
        {
            var start = grp * s.GroupSize;
            var sumSquares = 0f;
            for (var i = 0; i < s.GroupSize; i++)
            {
                var v = x[start + i];
                sumSquares += v * v;
            }
            var r = 1f / MathF.Sqrt(sumSquares / s.GroupSize + eps);
            rstd[grp] = r;
            for (var i = 0; i < s.GroupSize; i++)
            {
                var g = s.HasGain != 0 ? gain[i] : 1f;
                y[start + i] = g * (x[start + i] * r);
            }
        }
    }

    /// <summary>One thread per group: dX = rstd·(g·dY − x·rstd²·Σ(g·dY·x)/n). Reads dY[i] before writing dX[i].</summary>
    [Kernel]
    internal static void RmsNormBackwardInputKernel(NormShape s, ArrayView<float> dY, ArrayView<float> x, ArrayView<float> gain,
        ArrayView<float> rstd, ArrayView<float> dX)
    {
        for (var grp = KernelInfra.GlobalStart; grp < s.Groups; grp += KernelInfra.GlobalStride)
        {
            var start = grp * s.GroupSize;
            var dot = 0f;
            for (var i = 0; i < s.GroupSize; i++)
            {
                var g = s.HasGain != 0 ? gain[i] : 1f;
                dot += g * dY[start + i] * x[start + i];
            }
            var r = rstd[grp];
            var c = dot * r * r / s.GroupSize;
            for (var i = 0; i < s.GroupSize; i++)
            {
                var g = s.HasGain != 0 ? gain[i] : 1f;
                dX[start + i] = r * (g * dY[start + i] - x[start + i] * c);
            }
        }
    }

    /// <summary>One thread per gain element j: dGain[j] += Σ_groups dY·x·rstd, groups in order (deterministic).</summary>
    [Kernel]
    internal static void RmsNormBackwardGainKernel(NormShape s, ArrayView<float> dY, ArrayView<float> x, ArrayView<float> rstd,
        ArrayView<float> dGain)
    {
        for (var j = KernelInfra.GlobalStart; j < s.GroupSize; j += KernelInfra.GlobalStride)
        {
            var sum = 0f;
            for (var grp = 0; grp < s.Groups; grp++)
            {
                var k = grp * s.GroupSize + j;
                sum += dY[k] * (x[k] * rstd[grp]);
            }
            dGain[j] += sum;
        }
    }
}
