// Fused softmax cross-entropy (spec §3: loss = mean over positions of −log softmax(logits)[target]).
// Per row: max-subtracted log-sum-exp lse, loss_n = lse − logit[target], dLogits = (softmax − onehot)·gradScale.
// The mean is the deterministic fixed-order Sum of the row losses divided by N. A team of lanes per row: one
// online (max, Σ exp) pass (llm.c's fused classifier), the team's fixed-order tree, then one gradient pass.
using ILGPU;
using ILGPU.Runtime;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Kernels;

internal sealed class LossKernels : ILossOps
{
    readonly Device device;
    readonly ReductionKernels reduction;
    readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float, int> crossEntropy;

    public LossKernels(Device device, ReductionKernels reduction)
    {
        this.device = device;
        this.reduction = reduction;
        crossEntropy = device.Load(nameof(CrossEntropyKernel), a => a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float, int>(CrossEntropyKernel));
    }

    public void CrossEntropy(Tensor logits, Tensor targets, Tensor losses, Tensor loss, Tensor dLogits, float gradScale)
    {
        const string op = "CrossEntropy";
        KernelInfra.SameLength(logits, dLogits, op);
        KernelInfra.IntLength(logits, op);
        var vocab = logits.Shape.Last;
        var rows = (int)logits.Shape.Rows;
        if (targets.Length != rows || losses.Length != rows)
            throw new ArgumentException($"{op}: targets {targets.Name} {targets.Shape} and losses {losses.Name} {losses.Shape} must have one value per row of {logits.Name} {logits.Shape}.");
        if (loss.Length < 1)
            throw new ArgumentException($"{op}: loss {loss.Name} must hold one value.");
        var (config, width) = device.RowLaunch(rows, vocab);
        crossEntropy(device.Launching(), config, logits.View, targets.View, losses.View, dLogits.View,
            rows, vocab, gradScale, width);
        reduction.SumDivided(losses, loss, 0, rows);
    }

    /// <summary>
    /// A team per row: every lane reads the target logit first (dLogits may alias logits), the lanes gather
    /// (max, Σ exp) online over strided logits, the team merges them, lane 0 writes the loss, all lanes the gradient.
    /// </summary>
    [Kernel]
    internal static void CrossEntropyKernel(ArrayView<float> logits, ArrayView<float> targets, ArrayView<float> losses,
        ArrayView<float> dLogits, int rows, int vocab, float gradScale, int width)
    {
        var sharedMax = SharedMemory.Allocate<float>(KernelInfra.MaxCooperativeThreads);
        var sharedSum = SharedMemory.Allocate<float>(KernelInfra.MaxCooperativeThreads);
        var teams = Group.DimX / width;
        var lane = Group.IdxX % width;
        var teamBase = Group.IdxX - lane;
        for (var first = Grid.IdxX * teams; first < rows; first += Grid.DimX * teams)
        {
            var n = first + Group.IdxX / width;
            var active = n < rows;
            var start = active ? n * vocab : 0;
            var target = active ? (int)targets[n] : 0;
            var targetLogit = active ? logits[start + target] : 0f;
            var ms = MaxSum.Empty;
            if (active)
            {
                for (var i = lane; i < vocab; i += width)
                    ms = ms.Add(logits[start + i]);
            }
            var total = KernelInfra.TeamMaxSum(sharedMax, sharedSum, teamBase, lane, width, ms);
            if (active)
            {
                if (lane == 0)
                    losses[n] = total.Max + MathF.Log(total.Sum) - targetLogit;
                var invSum = 1f / total.Sum;
                for (var i = lane; i < vocab; i += width)
                {
                    var p = MathF.Exp(logits[start + i] - total.Max) * invSum;
                    dLogits[start + i] = (i == target ? p - 1f : p) * gradScale;
                }
            }
        }
    }
}
