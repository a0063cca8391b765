// Uniform draws on the host from the same Philox stream as the kernels and host initialisation
// (Random/Philox.cs): y[i] = Philox.Uniform(seed, stream, i), bit for bit.
using SddIlgpu.Tensors.Ops;
using SddIlgpu.Tensors.Random;

namespace SddIlgpu.Tensors.Managed;

internal sealed class ManagedRandom(Device device) : IRandomOps
{
    public void FillUniform(Tensor y, ulong seed, ulong stream)
    {
        device.ThrowIfDisposed();
        device.Counters.CountLaunch();
        var n = ManagedReduction.IntLength(y, "FillUniform");
        ManagedSimd.Rows(n, 64, (s, e) =>
        {
            var span = y.HostSpan();
            for (var i = s; i < e; i++)
                span[i] = Philox.Uniform(seed, stream, (ulong)i);
        });
    }
}
