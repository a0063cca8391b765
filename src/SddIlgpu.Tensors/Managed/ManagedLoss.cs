// Fused softmax cross-entropy on the host: per row loss = logsumexp(logits) − logits[target] (max-subtracted),
// dLogits = (softmax − onehot)·gradScale (may alias logits: the row is read fully before it is written),
// and the mean loss as a fixed-order sum over rows in double.
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Managed;

internal sealed class ManagedLoss(Device device) : ILossOps
{
    public void CrossEntropy(Tensor logits, Tensor targets, Tensor losses, Tensor loss, Tensor dLogits, float gradScale)
    {
        var v = logits.Shape.Last;
        var n = (int)(logits.Length / v);
        if (targets.Length != n || losses.Length != n || loss.Length < 1)
            throw new ArgumentException($"CrossEntropy: for logits {logits.Name} {logits.Shape} (N = {n}, V = {v}) targets and losses must hold N values ({targets.Name} {targets.Shape}, {losses.Name} {losses.Shape}), loss at least one.");
        ManagedElementwise.SameLength(logits, dLogits, "CrossEntropy");
        device.ThrowIfDisposed();
        device.Counters.CountLaunch();
        ManagedSimd.Rows(n, 4L * v, (r0, r1) =>
        {
            ReadOnlySpan<float> tg = targets.HostSpan();
            Span<float> lg = logits.HostSpan(), ls = losses.HostSpan(), dl = dLogits.HostSpan();
            for (var r = r0; r < r1; r++)
            {
                var target = (int)tg[r];
                if ((uint)target >= v)
                    throw new ArgumentOutOfRangeException(nameof(targets), $"CrossEntropy: target {tg[r]} at row {r} is outside [0, {v}).");
                var row = lg.Slice(r * v, v);
                var max = ManagedSimd.Max(row);
                var picked = row[target];
                var dRow = dl.Slice(r * v, v);
                var sum = ManagedSimd.ExpShifted(row, max, dRow); // dRow = exp(row − max); row is not read again
                ls[r] = MathF.Log(sum) + max - picked;
                var scale = gradScale / sum;
                for (var j = 0; j < v; j++)
                    dRow[j] *= scale;
                dRow[target] -= gradScale;
            }
        });
        var total = 0.0;
        var all = losses.HostSpan();
        for (var r = 0; r < n; r++)
            total += all[r];
        loss.HostSpan()[0] = (float)(total / n);
    }
}
