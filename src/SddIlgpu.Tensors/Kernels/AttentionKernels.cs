// Causal grouped-query attention as batched GEMMs over in-place (B, T, H·HS) layouts plus a row softmax:
// S = q·kᵀ, P = softmax(S/√HS + mask), ctx = P·v; backward dP = dCtx·vᵀ, dV = Σ_r Pᵀ·dCtx, dS = P⊙(dP − Σ dP⊙P)/√HS,
// dQ = dS·k, dK = Σ_r dSᵀ·q (spec/model.md, attention). Query head h reads kv head h / (NH / KVH).
// The products skip what causality makes zero or masked (tiles above the diagonal of the scores, the zero half of
// k in P·v, dS·k, Pᵀ·dCtx, dSᵀ·q). The softmaxes give each row a team of lanes: forward is one online (max, Σ exp) pass and one write pass,
// backward one dot-product pass and one write pass, each reduced by the team's fixed-order tree.
using ILGPU;
using ILGPU.Runtime;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Kernels;

internal sealed class AttentionKernels : IAttentionOps
{
    readonly Device device;
    readonly GemmKernels gemm;
    readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, int, int, float, int> softmaxForward;
    readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, int, int, float, int> softmaxBackward;

    public AttentionKernels(Device device, GemmKernels gemm)
    {
        this.device = device;
        this.gemm = gemm;
        softmaxForward = device.Load(nameof(CausalSoftmaxForwardKernel),
            a => a.LoadKernel<ArrayView<float>, int, int, float, int>(CausalSoftmaxForwardKernel));
        softmaxBackward = device.Load(nameof(CausalSoftmaxBackwardKernel),
            a => a.LoadKernel<ArrayView<float>, ArrayView<float>, int, int, float, int>(CausalSoftmaxBackwardKernel));
    }

    /// <summary>probs P (B, NH, T, T).</summary>
    public long SavedLength(in AttentionShape s) => AttentionStorage.Materialized.SavedLength(s);

    /// <summary>dP, then dS in place (B, NH, T, T).</summary>
    public long ScratchLength(in AttentionShape s) => AttentionStorage.Materialized.ScratchLength(s);

    /// <summary>saved = probs P (B, NH, T, T).</summary>
    public void Forward(in AttentionShape s, Tensor q, Tensor k, Tensor v, Tensor probs, Tensor ctx)
    {
        CheckShapes(s, "Attention.Forward", (q, "q", s.NH), (k, "k", s.KVH), (v, "v", s.KVH), (ctx, "ctx", s.NH));
        probs.ExpectLength((long)s.B * s.NH * s.T * s.T, "Attention.Forward probs (B, NH, T, T)");
        var perHead = new GemmSpec(s.T, s.T, s.HS, TransB: true, BatchOuter: s.B, BatchInner: s.NH);
        gemm.Gemm(perHead, q, QueryHeads(s), k, KvHeads(s), probs, Scores(s), GemmArgs.CausalSkipUpper);
        SoftmaxForward(probs, s.T, s.Scale);
        gemm.Gemm(new GemmSpec(s.T, s.HS, s.T, BatchOuter: s.B, BatchInner: s.NH), probs, Scores(s), v, KvHeads(s), ctx, QueryHeads(s),
            GemmArgs.CausalLowerA);
    }

    /// <summary>saved = probs P, scratch = dProbs (both (B, NH, T, T)); ctx is not read.</summary>
    public void Backward(in AttentionShape s, Tensor dCtx, Tensor q, Tensor k, Tensor v, Tensor ctx, Tensor probs, Tensor dProbs,
        Tensor dQ, Tensor dK, Tensor dV)
    {
        CheckShapes(s, "Attention.Backward", (dCtx, "dCtx", s.NH), (q, "q", s.NH), (k, "k", s.KVH), (v, "v", s.KVH),
            (dQ, "dQ", s.NH), (dK, "dK", s.KVH), (dV, "dV", s.KVH));
        probs.ExpectLength((long)s.B * s.NH * s.T * s.T, "Attention.Backward probs (B, NH, T, T)");
        dProbs.ExpectLength((long)s.B * s.NH * s.T * s.T, "Attention.Backward dProbs (B, NH, T, T)");
        var perHead = new GemmSpec(s.T, s.T, s.HS, TransB: true, BatchOuter: s.B, BatchInner: s.NH);
        gemm.Gemm(perHead, dCtx, QueryHeads(s), v, KvHeads(s), dProbs, Scores(s), GemmArgs.CausalSkipUpper);
        SumOverSharingHeads(s, probs, dCtx, dV);
        SoftmaxBackward(probs, dProbs, s.T, s.Scale);
        gemm.Gemm(new GemmSpec(s.T, s.HS, s.T, BatchOuter: s.B, BatchInner: s.NH), dProbs, Scores(s), k, KvHeads(s), dQ, QueryHeads(s),
            GemmArgs.CausalLowerA);
        SumOverSharingHeads(s, dProbs, q, dK);
    }

    /// <summary>
    /// dX (B, T, KVH·HS) = Σ_r weightsᵀ·x over the Rep query heads h = g·Rep + r of each kv head g: one launch per
    /// r batched over (B, KVH), the first overwriting and the rest adding, so no two threads write one element at once.
    /// </summary>
    void SumOverSharingHeads(in AttentionShape s, Tensor weights, Tensor x, Tensor dX)
    {
        long tt = (long)s.T * s.T;
        for (var r = 0; r < s.Rep; r++)
        {
            var spec = new GemmSpec(s.T, s.HS, s.T, TransA: true, Beta: r == 0 ? 0f : 1f, BatchOuter: s.B, BatchInner: s.KVH);
            var lw = new MatrixLayout(s.T, OuterStride: s.NH * tt, InnerStride: s.Rep * tt, Offset: r * tt);
            var lx = new MatrixLayout(s.NH * s.HS, OuterStride: (long)s.T * s.NH * s.HS, InnerStride: s.Rep * s.HS, Offset: r * s.HS);
            var ldx = new MatrixLayout(s.KVH * s.HS, OuterStride: (long)s.T * s.KVH * s.HS, InnerStride: s.HS);
            gemm.Gemm(spec, weights, lw, x, lx, dX, ldx, GemmArgs.CausalUpperA);
        }
    }

    /// <summary>Head h of a (B, T, NH·HS) tensor as a (T, HS) matrix.</summary>
    static MatrixLayout QueryHeads(in AttentionShape s) =>
        new(s.NH * s.HS, OuterStride: (long)s.T * s.NH * s.HS, InnerStride: s.HS);

    /// <summary>The kv head h / Rep that query head h reads, in a (B, T, KVH·HS) tensor.</summary>
    static MatrixLayout KvHeads(in AttentionShape s) =>
        new(s.KVH * s.HS, OuterStride: (long)s.T * s.KVH * s.HS, InnerStride: s.HS, InnerDiv: s.Rep);

    /// <summary>Head h of (B, NH, T, T) scores.</summary>
    static MatrixLayout Scores(in AttentionShape s) =>
        new(s.T, OuterStride: (long)s.NH * s.T * s.T, InnerStride: (long)s.T * s.T);

    static void CheckShapes(in AttentionShape s, string op, params (Tensor T, string Role, int Heads)[] tensors)
    {
        if (s.B < 1 || s.T < 1 || s.NH < 1 || s.KVH < 1 || s.HS < 1 || s.NH % s.KVH != 0)
            throw new ArgumentException($"{op}: B, T, NH, KVH, HS must be positive and KVH must divide NH; got {s}.");
        foreach (var (t, role, heads) in tensors)
            t.ExpectLength((long)s.B * s.T * heads * s.HS, $"{op} {role} (B={s.B}, T={s.T}, {heads}·HS={heads * s.HS})");
    }

    public void CausalSoftmaxForward(Tensor scores, float scale) =>
        SoftmaxForward(scores, SquareRows(scores, "CausalSoftmaxForward scores"), scale);

    /// <summary>Rows of length <paramref name="t"/>; the attention ops call this directly with their own T.</summary>
    void SoftmaxForward(Tensor scores, int t, float scale)
    {
        var rows = (int)(scores.Length / t);
        var (config, width) = device.RowLaunch(rows, t);
        softmaxForward(device.Launching(), config, scores.View, rows, t, scale, width);
    }

    public void CausalSoftmaxBackward(Tensor probs, Tensor dProbs, float scale) =>
        SoftmaxBackward(probs, dProbs, SquareRows(probs, "CausalSoftmaxBackward probs"), scale);

    void SoftmaxBackward(Tensor probs, Tensor dProbs, int t, float scale)
    {
        KernelInfra.SameLength(probs, dProbs, "CausalSoftmaxBackward");
        var rows = (int)(probs.Length / t);
        var (config, width) = device.RowLaunch(rows, t);
        softmaxBackward(device.Launching(), config, probs.View, dProbs.View, rows, t, scale, width);
    }

    static int SquareRows(Tensor x, string role)
    {
        if (x.Shape.Rank < 2 || x.Shape[-2] != x.Shape.Last)
            throw new ArgumentException($"{role}: expected (Z, T, T) with the last two axes equal; got {x.Shape} ({x.Name}).");
        KernelInfra.IntLength(x, role);
        return x.Shape.Last;
    }

    /// <summary>
    /// Row (z, t) by a team of <paramref name="width"/> lanes: p_j = exp(scale·s_j − max) / Σ for j ≤ t, 0 for j > t.
    /// One pass gathers (max, Σ) online, the team's tree merges the lanes, a second pass writes.
    /// </summary>
    [Kernel]
    internal static void CausalSoftmaxForwardKernel(ArrayView<float> scores, int rows, int t, float scale, int width)
    {
        var sharedMax = SharedMemory.Allocate<float>(KernelInfra.MaxCooperativeThreads);
        var sharedSum = SharedMemory.Allocate<float>(KernelInfra.MaxCooperativeThreads);
        var teams = Group.DimX / width;
        var lane = Group.IdxX % width;
        var teamBase = Group.IdxX - lane;
        for (var first = Grid.IdxX * teams; first < rows; first += Grid.DimX * teams)
        {
            var row = first + Group.IdxX / width;
            var active = row < rows;
            var at = active ? (long)row * t : 0;
            var last = active ? row % t : -1;
            var ms = MaxSum.Empty;
            for (var j = lane; j <= last; j += width)
                ms = ms.Add(scale * scores[at + j]);
            var total = KernelInfra.TeamMaxSum(sharedMax, sharedSum, teamBase, lane, width, ms);
            if (active)
            {
                var inv = 1f / total.Sum;
                for (var j = lane; j < t; j += width)
                    scores[at + j] = j <= last ? MathF.Exp(scale * scores[at + j] - total.Max) * inv : 0f;
            }
        }
    }

    /// <summary>Row (z, t) by a team: dS_j = scale·P_j·(dP_j − Σ_i dP_i·P_i) for j ≤ t, 0 for j > t.</summary>
    [Kernel]
    internal static void CausalSoftmaxBackwardKernel(ArrayView<float> probs, ArrayView<float> dProbs, int rows, int t, float scale, int width)
    {
        var shared = SharedMemory.Allocate<float>(KernelInfra.MaxCooperativeThreads);
        var teams = Group.DimX / width;
        var lane = Group.IdxX % width;
        var teamBase = Group.IdxX - lane;
        for (var first = Grid.IdxX * teams; first < rows; first += Grid.DimX * teams)
        {
            var row = first + Group.IdxX / width;
            var active = row < rows;
            var at = active ? (long)row * t : 0;
            var last = active ? row % t : -1;
            var dot = 0f;
            for (var j = lane; j <= last; j += width)
                dot += dProbs[at + j] * probs[at + j];
            dot = KernelInfra.TeamSum(shared, teamBase, lane, width, dot);
            if (active)
            {
                for (var j = lane; j < t; j += width)
                    dProbs[at + j] = j <= last ? scale * probs[at + j] * (dProbs[at + j] - dot) : 0f;
            }
        }
    }
}
