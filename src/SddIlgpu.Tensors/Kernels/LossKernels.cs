// Fused softmax cross-entropy (spec §3: loss = mean over positions of −log softmax(logits)[target]).
// Per row: max-subtracted log-sum-exp lse, loss_n = lse − logit[target], dLogits = (softmax − onehot)·gradScale.
// The mean is the deterministic fixed-order Sum of the row losses divided by N.
using ILGPU;
using ILGPU.Runtime;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Kernels;

internal sealed class LossKernels : ILossOps
{
    readonly Device device;
    readonly ReductionKernels reduction;
    readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float> crossEntropy;

    public LossKernels(Device device, ReductionKernels reduction)
    {
        this.device = device;
        this.reduction = reduction;
        crossEntropy = device.Load(nameof(CrossEntropyKernel), a => a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float>(CrossEntropyKernel));
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
        crossEntropy(device.Launching(), device.GridStride(rows), logits.View, targets.View, losses.View, dLogits.View,
            rows, vocab, gradScale);
        reduction.SumDivided(losses, loss, 0, rows);
    }

    /// <summary>One thread per row: max, Σ exp(l − max), loss, then the gradient (logit i read before dLogits i is written).</summary>
    [Kernel]
    internal static void CrossEntropyKernel(ArrayView<float> logits, ArrayView<float> targets, ArrayView<float> losses,
        ArrayView<float> dLogits, int rows, int vocab, float gradScale)
    {
        for (var n = KernelInfra.GlobalStart; n < rows; n += KernelInfra.GlobalStride)
        {
            var start = n * vocab;
            var max = logits[start];
            for (var i = 1; i < vocab; i++)
                max = MathF.Max(max, logits[start + i]);
            var sum = 0f;
            for (var i = 0; i < vocab; i++)
                sum += MathF.Exp(logits[start + i] - max);
            var target = (int)targets[n];
            losses[n] = max + MathF.Log(sum) - logits[start + target];
            var invSum = 1f / sum;
            for (var i = 0; i < vocab; i++)
            {
                var p = MathF.Exp(logits[start + i] - max) * invSum;
                dLogits[start + i] = (i == target ? p - 1f : p) * gradScale;
            }
        }
    }
}
