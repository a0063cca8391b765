// RMS normalisation on the host (spec §3): y = gain ⊙ x·rstd, rstd = 1/sqrt(mean(x², group) + eps), and its
// backward dX = rstd·(g⊙dY − x̂·mean(g⊙dY⊙x̂)), x̂ = x·rstd; dGain += Σ dY⊙x̂ over fixed chunks of groups,
// chunk partials added in order (deterministic, no atomics). Rows are Vector256 loops with a fixed lane order.
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Managed;

internal sealed class ManagedNorm(Device device) : INormOps
{
    /// <summary>Groups per dGain partial: fixed, so the summation order never depends on the core count.</summary>
    internal const int GroupsPerChunk = 64;

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
                rs[g] = ForwardGroup(xs.Slice(g * groupSize, groupSize), gs, eps, ys.Slice(g * groupSize, groupSize));
        });
    }

    /// <summary>One group: y = gain ⊙ x·r (x·r without a gain), r = 1/sqrt(mean(x²) + eps), returned.</summary>
    internal static float ForwardGroup(ReadOnlySpan<float> x, ReadOnlySpan<float> gain, float eps, Span<float> y)
    {
        var r = 1f / MathF.Sqrt(ManagedSimd.Dot(x, x) / x.Length + eps);
        ScaleRow(x, r, gain, y);
        return r;
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
        AddPartials(dGain!.HostSpan(), part, chunks);
    }

    /// <summary>y[i] = x[i]·r·gain[i] (x[i]·r without a gain), in that order.</summary>
    internal static void ScaleRow(ReadOnlySpan<float> x, float r, ReadOnlySpan<float> gain, Span<float> y)
    {
        ref var rx = ref MemoryMarshal.GetReference(x);
        ref var rg = ref MemoryMarshal.GetReference(gain);
        ref var ry = ref MemoryMarshal.GetReference(y);
        var vr = Vector256.Create(r);
        var i = 0;
        for (; i + 8 <= x.Length; i += 8)
        {
            var v = Vector256.LoadUnsafe(ref rx, (nuint)i) * vr;
            (gain.IsEmpty ? v : v * Vector256.LoadUnsafe(ref rg, (nuint)i)).StoreUnsafe(ref ry, (nuint)i);
        }
        for (; i < x.Length; i++)
            y[i] = gain.IsEmpty ? x[i] * r : x[i] * r * gain[i];
    }

    /// <summary>Groups [c·GroupsPerChunk, end): dX, and this chunk's Σ dY⊙x̂ into <paramref name="dGainPart"/> when given.</summary>
    static void BackwardChunk(int c, int end, Tensor dY, Tensor x, Tensor? gain, Tensor rstd, Tensor dX, Span<float> dGainPart, int groupSize)
    {
        ReadOnlySpan<float> xs = x.HostSpan(), rs = rstd.HostSpan(), gs = gain is null ? default : gain.HostSpan();
        Span<float> dys = dY.HostSpan(), dxs = dX.HostSpan();
        dGainPart.Clear();
        for (var g = c * GroupsPerChunk; g < end; g++)
            BackwardGroup(xs.Slice(g * groupSize, groupSize), dys.Slice(g * groupSize, groupSize), gs, rs[g], dxs.Slice(g * groupSize, groupSize), dGainPart);
    }

    /// <summary>One group: dX = r·(g⊙dY − x·r·mean(g⊙dY⊙x·r)) (dX may alias dY); dGainPart += dY⊙x·r when given.</summary>
    internal static void BackwardGroup(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, ReadOnlySpan<float> gain, float r, Span<float> dx, Span<float> dGainPart)
    {
        var mean = GroupDot(x, dy, gain, r, dGainPart) / x.Length;
        GroupDx(x, dy, gain, r, mean, dx);
    }

    /// <summary>Adds the chunk partials of dGain in chunk order (the fixed order every backward uses).</summary>
    internal static void AddPartials(Span<float> dGain, ReadOnlySpan<float> partials, int chunks)
    {
        var n = dGain.Length;
        for (var c = 0; c < chunks; c++)
            for (var i = 0; i < n; i++)
                dGain[i] += partials[c * n + i];
    }

    /// <summary>Σ (g⊙dY)·x̂ (eight lanes, then the lanes in a fixed tree, then the tail); dGainPart += dY⊙x̂ when given.</summary>
    static float GroupDot(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, ReadOnlySpan<float> gain, float r, Span<float> dGainPart)
    {
        ref var rx = ref MemoryMarshal.GetReference(x);
        ref var rdy = ref MemoryMarshal.GetReference(dy);
        ref var rg = ref MemoryMarshal.GetReference(gain);
        ref var rp = ref MemoryMarshal.GetReference(dGainPart);
        var vr = Vector256.Create(r);
        var acc = Vector256<float>.Zero;
        var i = 0;
        for (; i + 8 <= x.Length; i += 8)
        {
            var xhat = Vector256.LoadUnsafe(ref rx, (nuint)i) * vr;
            var d = Vector256.LoadUnsafe(ref rdy, (nuint)i);
            acc = Vector256.FusedMultiplyAdd(gain.IsEmpty ? d : Vector256.LoadUnsafe(ref rg, (nuint)i) * d, xhat, acc);
            if (!dGainPart.IsEmpty)
                Vector256.FusedMultiplyAdd(d, xhat, Vector256.LoadUnsafe(ref rp, (nuint)i)).StoreUnsafe(ref rp, (nuint)i);
        }
        var dot = Vector256.Sum(acc);
        for (; i < x.Length; i++)
        {
            var xhat = x[i] * r;
            dot = MathF.FusedMultiplyAdd(gain.IsEmpty ? dy[i] : gain[i] * dy[i], xhat, dot);
            if (!dGainPart.IsEmpty)
                dGainPart[i] = MathF.FusedMultiplyAdd(dy[i], xhat, dGainPart[i]);
        }
        return dot;
    }

    /// <summary>dX = r·(g⊙dY − x·r·mean); dX may alias dY (each element is read before it is written).</summary>
    static void GroupDx(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, ReadOnlySpan<float> gain, float r, float mean, Span<float> dx)
    {
        ref var rx = ref MemoryMarshal.GetReference(x);
        ref var rdy = ref MemoryMarshal.GetReference(dy);
        ref var rg = ref MemoryMarshal.GetReference(gain);
        ref var rdx = ref MemoryMarshal.GetReference(dx);
        Vector256<float> vr = Vector256.Create(r), vm = Vector256.Create(mean);
        var i = 0;
        for (; i + 8 <= x.Length; i += 8)
        {
            var d = Vector256.LoadUnsafe(ref rdy, (nuint)i);
            var gdy = gain.IsEmpty ? d : Vector256.LoadUnsafe(ref rg, (nuint)i) * d;
            (vr * (gdy - Vector256.LoadUnsafe(ref rx, (nuint)i) * vr * vm)).StoreUnsafe(ref rdx, (nuint)i);
        }
        for (; i < x.Length; i++)
        {
            var gdy = gain.IsEmpty ? dy[i] : gain[i] * dy[i];
            dx[i] = r * (gdy - x[i] * r * mean);
        }
    }

    internal static int Check(Tensor x, Tensor? gain, Tensor rstd, int groupSize)
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
