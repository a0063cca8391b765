// Runs a block of op calls with another group size for the cooperative kernels (reduction trees, row teams,
// column partials): tests use it to launch the GPU shape (256 threads) on the CPU accelerator at tiny sizes.
using SddIlgpu.Tensors;

namespace SddIlgpu.Tests.Support;

public static class CooperativeLaunch
{
    /// <summary>Sets the device's cooperative group size to <paramref name="threads"/> until the scope is disposed.</summary>
    public static IDisposable Threads(Device device, int threads)
    {
        var keep = device.Kernels.CooperativeThreads;
        device.Kernels.CooperativeThreads = threads;
        return new Restore(() => device.Kernels.CooperativeThreads = keep);
    }

    sealed class Restore(Action undo) : IDisposable
    {
        public void Dispose() => undo();
    }
}
