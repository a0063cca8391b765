// RMS normalisation on the host (spec §3): y = gain ⊙ x·rstd, rstd = 1/sqrt(mean(x², group) + eps), and its
// backward dX = rstd·(g⊙dY − x̂·mean(g⊙dY⊙x̂)), x̂ = x·rstd; dGain += Σ dY⊙x̂ over fixed chunks of groups,
// chunk partials added in order (deterministic, no atomics).
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Managed;

internal sealed class ManagedNorm(Device device) : INormOps
{
    /// <summary>Groups per dGain partial: fixed, so the summation order never depends on the core count.</summary>
    const int GroupsPerChunk = 64;

    float[] partials = new float[1024];

    public void Forward(Tensor x, Tensor? gain, Tensor y, Tensor rstd, int groupSize, float eps)
    {
        var groups = Check(x, gain, rstd, groupSize);
        ManagedElementwise.SameLength(x, y, "RmsNorm");
        device.ThrowIfDisposed();
        device.Counters.CountLaunch();
        ManagedSimd.Rows(groups, groupSize, (g0, g1) =>
        {
            ReadOnlySpan<float> xs = x.HostSpan(), gs = gain is null ? default : gain.HostSpan();
            Span<float> ys = y.HostSpan(), rs = rstd.HostSpan();
            for (var g = g0; g < g1; g++)
            {
                var xg = xs.Slice(g * groupSize, groupSize);
                var r = 1f / MathF.Sqrt(ManagedSimd.Dot(xg, xg) / groupSize + eps);
                rs[g] = r;
                var yg = ys.Slice(g * groupSize, groupSize);
                for (var i = 0; i < groupSize; i++)
                    yg[i] = gain is null ? xg[i] * r : xg[i] * r * gs[i];
            }
        });
    }

    public void Backward(Tensor dY, Tensor x, Tensor? gain, Tensor rstd, Tensor dX, Tensor? dGain, int groupSize)
    {
        var groups = Check(x, gain, rstd, groupSize);
        ManagedElementwise.SameLength(x, dY, "RmsNorm backward");
        ManagedElementwise.SameLength(x, dX, "RmsNorm backward");
        if (gain is not null && dGain is not null)
            ManagedElementwise.SameLength(gain, dGain, "RmsNorm backward");
        device.ThrowIfDisposed();
        device.Counters.CountLaunch();
        var withGain = gain is not null && dGain is not null;
        var chunks = (groups + GroupsPerChunk - 1) / GroupsPerChunk;
        if (withGain && partials.Length < chunks * groupSize)
            partials = new float[Math.Max(chunks * groupSize, 2 * partials.Length)]; // grows once to the largest call
        var part = partials;
        ManagedSimd.Rows(chunks, (long)GroupsPerChunk * groupSize, (c0, c1) =>
        {
            for (var c = c0; c < c1; c++)
                BackwardChunk(c, Math.Min(groups, (c + 1) * GroupsPerChunk), dY, x, gain, rstd, dX,
                    withGain ? part.AsSpan(c * groupSize, groupSize) : default, groupSize);
        });
        if (!withGain)
            return;
        var dg = dGain!.HostSpan();
        for (var c = 0; c < chunks; c++)
            for (var i = 0; i < groupSize; i++)
                dg[i] += part[c * groupSize + i];
    }

    /// <summary>Groups [c·GroupsPerChunk, end): dX, and this chunk's Σ dY⊙x̂ into <paramref name="dGainPart"/> when given.</summary>
    static void BackwardChunk(int c, int end, Tensor dY, Tensor x, Tensor? gain, Tensor rstd, Tensor dX, Span<float> dGainPart, int groupSize)
    {
        ReadOnlySpan<float> xs = x.HostSpan(), rs = rstd.HostSpan(), gs = gain is null ? default : gain.HostSpan();
        Span<float> dys = dY.HostSpan(), dxs = dX.HostSpan();
        dGainPart.Clear();
        for (var g = c * GroupsPerChunk; g < end; g++)
        {
            var xg = xs.Slice(g * groupSize, groupSize);
            var dyg = dys.Slice(g * groupSize, groupSize);
            var dxg = dxs.Slice(g * groupSize, groupSize);
            var r = rs[g];
            var dot = 0f; // Σ (g⊙dY)·x̂ in index order
            for (var i = 0; i < groupSize; i++)
            {
                var xhat = xg[i] * r;
                var gdy = gain is null ? dyg[i] : gs[i] * dyg[i];
                dot += gdy * xhat;
                if (!dGainPart.IsEmpty)
                    dGainPart[i] += dyg[i] * xhat;
            }
            var mean = dot / groupSize;
            for (var i = 0; i < groupSize; i++) // dX may alias dY: element i is read before it is written
            {
                var gdy = gain is null ? dyg[i] : gs[i] * dyg[i];
                dxg[i] = r * (gdy - xg[i] * r * mean);
            }
        }
    }

    static int Check(Tensor x, Tensor? gain, Tensor rstd, int groupSize)
    {
        if (groupSize <= 0 || x.Length % groupSize != 0)
            throw new ArgumentException($"RmsNorm: group size {groupSize} must divide the {x.Length} elements of {x.Name} {x.Shape}.");
        if (gain is not null && gain.Length != groupSize)
            throw new ArgumentException($"RmsNorm: gain {gain.Name} {gain.Shape} must hold {groupSize} values.");
        var groups = (int)(x.Length / groupSize);
        if (rstd.Length != groups)
            throw new ArgumentException($"RmsNorm: rstd {rstd.Name} {rstd.Shape} must hold {groups} values (one per group).");
        return groups;
    }
}
