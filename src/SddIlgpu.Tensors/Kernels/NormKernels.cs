// RMS norm over groups of the last axis (spec §3): y = g ⊙ x·rstd, rstd = 1/sqrt(mean(x²) + eps), with
// one gain of groupSize shared by every group (or none). Backward: dX = rstd·(g ⊙ dY − x·rstd²·Σ(g·dY·x)/n),
// dGain += Σ over groups of dY ⊙ x·rstd in two deterministic passes without atomics: partials over blocks of
// 64 norm groups (a thread per (block, gain element), groups in order), then a thread per gain element adds
// its blocks' partials in order. The blocks depend only on the shape, so the bits do not depend on the device.
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
    /// <summary>Norm groups per block of the gain gradient's first pass (fewer blocks when the scratch is too small).</summary>
    internal const int GainRowsPerBlock = 64;

    /// <summary>Floats of scratch for the gain gradient's partials (1 MB): blocks × groupSize must fit.</summary>
    internal const int GainScratch = 1 << 18;

    readonly Device device;
    readonly Tensor gainPartials;
    readonly Action<AcceleratorStream, KernelConfig, NormShape, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, float> forward;
    readonly Action<AcceleratorStream, KernelConfig, NormShape, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> backwardInput;
    readonly Action<AcceleratorStream, KernelConfig, NormShape, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int> gainPartialsKernel;
    readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, int, int> gainFinish;

    public NormKernels(Device device)
    {
        this.device = device;
        forward = device.Load(nameof(RmsNormForwardKernel), a => a.LoadKernel<NormShape, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, float>(RmsNormForwardKernel));
        backwardInput = device.Load(nameof(RmsNormBackwardInputKernel), a => a.LoadKernel<NormShape, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(RmsNormBackwardInputKernel));
        gainPartialsKernel = device.Load(nameof(RmsNormGainPartialsKernel), a => a.LoadKernel<NormShape, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(RmsNormGainPartialsKernel));
        gainFinish = device.Load(nameof(RmsNormGainFinishKernel), a => a.LoadKernel<ArrayView<float>, ArrayView<float>, int, int>(RmsNormGainFinishKernel));
        gainPartials = device.AllocateTensor(GainScratch, "norm.gainPartials");
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
            var (blocks, rowsPerBlock) = GainBlocks(shape);
            gainPartialsKernel(device.Launching(), device.GridStride((long)blocks * groupSize), shape, dY.View, x.View, rstd.View,
                gainPartials.View, rowsPerBlock, blocks);
            gainFinish(device.Launching(), device.GridStride(groupSize), gainPartials.View, dGain.View, groupSize, blocks);
        }
        var (config, width) = device.RowLaunch(shape.Groups, groupSize);
        backwardInput(device.Launching(), config, shape.WithTeamWidth(width),
            dY.View, x.View, (gain ?? x).View, rstd.View, dX.View);
    }

    /// <summary>Blocks of norm groups for the gain gradient: 64 groups each, fewer blocks when the scratch is short.</summary>
    static (int Blocks, int RowsPerBlock) GainBlocks(NormShape s)
    {
        if (s.GroupSize > GainScratch)
            throw new ArgumentException($"RmsNorm.Backward: a gain of {s.GroupSize} values exceeds the {GainScratch} the gain gradient's scratch holds.");
        var blocks = Math.Min((s.Groups + GainRowsPerBlock - 1) / GainRowsPerBlock, GainScratch / s.GroupSize);
        var rowsPerBlock = (s.Groups + blocks - 1) / blocks;
        return ((s.Groups + rowsPerBlock - 1) / rowsPerBlock, rowsPerBlock);
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

    /// <summary>
    /// Thread per (block b, gain element j), j fastest so that neighbours read neighbouring addresses:
    /// partials[b·n + j] = Σ dY·x·rstd over the norm groups of block b, in group order.
    /// </summary>
    [Kernel]
    internal static void RmsNormGainPartialsKernel(NormShape s, ArrayView<float> dY, ArrayView<float> x, ArrayView<float> rstd,
        ArrayView<float> partials, int rowsPerBlock, int blocks)
    {
        var items = blocks * s.GroupSize;
        for (var item = KernelInfra.GlobalStart; item < items; item += KernelInfra.GlobalStride)
        {
            var block = item / s.GroupSize;
            var j = item - block * s.GroupSize;
            var first = block * rowsPerBlock;
            var end = first + rowsPerBlock < s.Groups ? first + rowsPerBlock : s.Groups;
            var sum = 0f;
            for (var grp = first; grp < end; grp++)
            {
                var k = grp * s.GroupSize + j;
                sum += dY[k] * (x[k] * rstd[grp]);
            }
            partials[item] = sum;
        }
    }

    /// <summary>Thread per gain element j: dGain[j] += Σ_b partials[b·n + j], blocks in order.</summary>
    [Kernel]
    internal static void RmsNormGainFinishKernel(ArrayView<float> partials, ArrayView<float> dGain, int groupSize, int blocks)
    {
        for (var j = KernelInfra.GlobalStart; j < groupSize; j += KernelInfra.GlobalStride)
        {
            var sum = 0f;
            for (var b = 0; b < blocks; b++)
                sum += partials[b * groupSize + j];
            dGain[j] += sum;
        }
    }
}
