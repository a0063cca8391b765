// The sdd-code feed-forward's joint RMS norm over [up | gate] fused with SwiGLU on the host (spec §3 FFN; issue 14
// item 4): each row is normalised and gated while it is in L1, instead of one full pass over the (R, 2F) buffer for
// the norm and another for SwiGLU, and the same in reverse for the backward, which recomputes each normalised row
// from z and rstd rather than reading the forward's copy back from memory. The per-row arithmetic is ManagedNorm's
// and ManagedActivation's own, rows are split the same way and the gain gradient is summed in ManagedNorm's chunks,
// so the results are the separate ops' bit for bit (ManagedOpsTests).
using System.Buffers;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Managed;

internal sealed class ManagedFusedFfn(Device device) : IFusedFfnOps
{
    float[] partials = new float[2048];

    public void NormSwiGluForward(Tensor z, Tensor? gain, Tensor? upGate, Tensor rstd, Tensor s, float eps)
    {
        var (rows, f) = Check(z, gain, rstd, upGate ?? z, s, "NormSwiGluForward");
        ManagedSimd.Rows(rows, 3L * 2 * f, (r0, r1) =>
        {
            ReadOnlySpan<float> zs = z.HostSpan(), gs = gain is null ? default : gain.HostSpan();
            Span<float> ss = s.HostSpan(), rs = rstd.HostSpan();
            var ug = upGate is null ? default : upGate.HostSpan();
            Span<float> sig = stackalloc float[ManagedActivation.Chunk];
            var rented = upGate is null ? ArrayPool<float>.Shared.Rent(2 * f) : null;
            for (var r = r0; r < r1; r++)
            {
                var row = rented is null ? ug.Slice(r * 2 * f, 2 * f) : rented.AsSpan(0, 2 * f); // not stored: one L1-hot row
                rs[r] = ManagedNorm.ForwardGroup(zs.Slice(r * 2 * f, 2 * f), gs, eps, row);
                ManagedActivation.SwiGluRow(row, ss.Slice(r * f, f), sig);
            }
            if (rented is not null)
                ArrayPool<float>.Shared.Return(rented);
        });
    }

    public void SwiGluNormBackward(Tensor dS, Tensor z, Tensor? gain, Tensor rstd, Tensor dUpGate, Tensor? dGain)
    {
        var (rows, f) = Check(z, gain, rstd, dUpGate, dS, "SwiGluNormBackward");
        if (gain is not null && dGain is not null)
            ManagedElementwise.SameLength(gain, dGain, "SwiGluNormBackward");
        var withGain = gain is not null && dGain is not null;
        const int perChunk = ManagedNorm.GroupsPerChunk;
        var chunks = (rows + perChunk - 1) / perChunk;
        if (withGain && partials.Length < chunks * 2 * f)
            partials = new float[Math.Max(chunks * 2 * f, 2 * partials.Length)]; // grows once to the largest call
        var part = partials;
        ManagedSimd.Rows(chunks, 5L * perChunk * 2 * f, (c0, c1) =>
        {
            ReadOnlySpan<float> zs = z.HostSpan(), ds = dS.HostSpan(), rs = rstd.HostSpan();
            ReadOnlySpan<float> gs = gain is null ? default : gain.HostSpan();
            var dug = dUpGate.HostSpan();
            Span<float> sig = stackalloc float[ManagedActivation.Chunk];
            var rented = ArrayPool<float>.Shared.Rent(2 * f);
            var upGateRow = rented.AsSpan(0, 2 * f); // one row of [up | gate], recomputed: cheaper than reading it back from memory
            for (var c = c0; c < c1; c++)
            {
                var dGainPart = withGain ? part.AsSpan(c * 2 * f, 2 * f) : default;
                dGainPart.Clear();
                for (var r = c * perChunk; r < Math.Min(rows, (c + 1) * perChunk); r++)
                {
                    var d = dug.Slice(r * 2 * f, 2 * f);
                    var zr = zs.Slice(r * 2 * f, 2 * f);
                    ManagedNorm.ScaleRow(zr, rs[r], gs, upGateRow);
                    ManagedActivation.SwiGluBackwardRow(ds.Slice(r * f, f), upGateRow, d, sig);
                    ManagedNorm.BackwardGroup(zr, d, gs, rs[r], d, dGainPart);
                }
            }
            ArrayPool<float>.Shared.Return(rented);
        });
        if (withGain)
            ManagedNorm.AddPartials(dGain!.HostSpan(), part, chunks);
    }

    /// <summary>z and upGate (R, 2F; z again when upGate is not stored), s or dS (R, F), rstd (R), gain (2F); returns (R, F).</summary>
    (int Rows, int F) Check(Tensor z, Tensor? gain, Tensor rstd, Tensor upGate, Tensor s, string op)
    {
        var (rows, f) = ManagedActivation.Split(upGate, s, op);
        ManagedElementwise.SameLength(upGate, z, op);
        if (ManagedNorm.Check(z, gain, rstd, 2 * f) != rows)
            throw new ArgumentException($"{op}: {z.Name} {z.Shape} must have {rows} rows of {2 * f}.");
        device.ThrowIfDisposed();
        device.Counters.CountLaunch();
        return (rows, f);
    }
}
