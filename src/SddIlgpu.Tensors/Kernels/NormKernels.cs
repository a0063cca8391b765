// RMS norm over groups of the last axis (spec §3): y = g ⊙ x·rstd, rstd = 1/sqrt(mean(x²) + eps), with
// one gain of groupSize shared by every group (or none). Backward: dX = rstd·(g ⊙ dY − x·rstd²·Σ(g·dY·x)/n),
// dGain += Σ over groups of dY ⊙ x·rstd, one thread per gain element looping groups in order (no atomics).
// Forward and dX give each norm group a team of lanes (llm.c's warp per row, as a shared-memory tree so that
// OpenCL needs no shuffles): lanes read consecutive elements, and the team's tree sums in a fixed order.
using ILGPU;
using ILGPU.Runtime;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Kernels;

/// <summary>Sizes of one norm launch: Groups groups of GroupSize contiguous values.</summary>
internal readonly struct NormShape(int groups, int groupSize, int hasGain, int teamWidth = 1)
{
    public readonly int Groups = groups;
    public readonly int GroupSize = groupSize;

    /// <summary>1 when a gain is given, 0 for the gainless norm (the gain view is then a placeholder).</summary>
    public readonly int HasGain = hasGain;

    /// <summary>Lanes per norm group in the cooperative kernels (a power of two dividing the group size of the launch).</summary>
    public readonly int TeamWidth = teamWidth;

    public NormShape WithTeamWidth(int width) => new(Groups, GroupSize, HasGain, width);
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
        var (config, width) = device.RowLaunch(shape.Groups, groupSize);
        forward(device.Launching(), config, shape.WithTeamWidth(width),
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
        var (config, width) = device.RowLaunch(shape.Groups, groupSize);
        backwardInput(device.Launching(), config, shape.WithTeamWidth(width),
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

    /// <summary>A team per norm group: Σx² over strided lanes and the team's tree, then y = g·x·rstd (y may alias x).</summary>
    [Kernel]
    internal static void RmsNormForwardKernel(NormShape s, ArrayView<float> x, ArrayView<float> gain, ArrayView<float> y,
        ArrayView<float> rstd, float eps)
    {
        var shared = SharedMemory.Allocate<float>(KernelInfra.MaxCooperativeThreads);
        var width = s.TeamWidth;
        var teams = Group.DimX / width;
        var lane = Group.IdxX % width;
        var teamBase = Group.IdxX - lane;
        for (var first = Grid.IdxX * teams; first < s.Groups; first += Grid.DimX * teams)
        {
            var grp = first + Group.IdxX / width;
            var active = grp < s.Groups;
            var start = active ? grp * s.GroupSize : 0;
            var sumSquares = 0f;
            if (active)
            {
                for (var i = lane; i < s.GroupSize; i += width)
                {
                    var v = x[start + i];
                    sumSquares += v * v;
                }
            }
            var total = KernelInfra.TeamSum(shared, teamBase, lane, width, sumSquares);
            if (active)
            {
                var r = 1f / MathF.Sqrt(total / s.GroupSize + eps);
                if (lane == 0)
                    rstd[grp] = r;
                for (var i = lane; i < s.GroupSize; i += width)
                {
                    var g = s.HasGain != 0 ? gain[i] : 1f;
                    y[start + i] = g * (x[start + i] * r);
                }
            }
        }
    }

    /// <summary>
    /// A team per norm group: Σ g·dY·x by the team's tree, then dX = rstd·(g·dY − x·rstd²·Σ/n); each lane reads
    /// dY[i] before it writes dX[i] (dX may alias dY).
    /// </summary>
    [Kernel]
    internal static void RmsNormBackwardInputKernel(NormShape s, ArrayView<float> dY, ArrayView<float> x, ArrayView<float> gain,
        ArrayView<float> rstd, ArrayView<float> dX)
    {
        var shared = SharedMemory.Allocate<float>(KernelInfra.MaxCooperativeThreads);
        var width = s.TeamWidth;
        var teams = Group.DimX / width;
        var lane = Group.IdxX % width;
        var teamBase = Group.IdxX - lane;
        for (var first = Grid.IdxX * teams; first < s.Groups; first += Grid.DimX * teams)
        {
            var grp = first + Group.IdxX / width;
            var active = grp < s.Groups;
            var start = active ? grp * s.GroupSize : 0;
            var dot = 0f;
            if (active)
            {
                for (var i = lane; i < s.GroupSize; i += width)
                {
                    var g = s.HasGain != 0 ? gain[i] : 1f;
                    dot += g * dY[start + i] * x[start + i];
                }
            }
            dot = KernelInfra.TeamSum(shared, teamBase, lane, width, dot);
            if (active)
            {
                var r = rstd[grp];
                var c = dot * r * r / s.GroupSize;
                for (var i = lane; i < s.GroupSize; i += width)
                {
                    var g = s.HasGain != 0 ? gain[i] : 1f;
                    dX[start + i] = r * (g * dY[start + i] - x[start + i] * c);
                }
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
