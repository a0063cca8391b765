// One shared Device per back end for the whole test run: opening a device compiles every kernel.
using NUnit.Framework;
using SddIlgpu.Tensors;

namespace SddIlgpu.Tests.Support;

public static class TestDevices
{
    static readonly Dictionary<string, Device?> Opened = [];
    static readonly Dictionary<string, string> Why = [];
    static readonly Lock Gate = new();

    /// <summary>Every back end the op tests run on; absent GPUs are ignored, not failed.</summary>
    public static readonly string[] All = ["ilgpu-cpu", "cpu", "cuda", "opencl"];

    /// <summary>The back ends whose kernels are the ILGPU ones (the managed path is tested separately).</summary>
    public static readonly string[] Kernel = ["ilgpu-cpu", "cuda", "opencl"];

    /// <summary>The shared device, or Assert.Ignore when this machine has none of that kind.</summary>
    public static Device Get(string name)
    {
        lock (Gate)
        {
            if (!Opened.TryGetValue(name, out var device))
            {
                try
                {
                    device = Device.Open(name);
                }
                catch (DeviceNotFoundException e)
                {
                    device = null;
                    Why[name] = e.Message;
                }
                Opened[name] = device;
            }
            if (device is null)
                Assert.Ignore($"No {name} device here: {Why[name]}");
            return device!;
        }
    }

    internal static void DisposeAll()
    {
        lock (Gate)
        {
            foreach (var d in Opened.Values)
                d?.Dispose();
            Opened.Clear();
        }
    }
}

[SetUpFixture]
public sealed class TestRun
{
    [OneTimeTearDown]
    public void TearDown() => TestDevices.DisposeAll();
}
