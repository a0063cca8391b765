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

    /// <summary>
    /// The device for fixtures that launch GPU-sized groups (the 256-thread tiled and blocked GEMMs, cooperative
    /// kernels raised to 256 threads): on ilgpu-cpu a second shared accelerator, elsewhere the shared device. ILGPU's
    /// CPU accelerator starts one OS thread per lane of the largest group it has launched, and from then on every
    /// launch of any kernel waits on a barrier of all of them (2 × 256 threads on two cores); one such launch on the
    /// shared device made every later ilgpu-cpu training test about 10× slower (a 25 s test took 4 minutes).
    /// </summary>
    public static Device Wide(string name) => name == "ilgpu-cpu" ? Get("ilgpu-cpu", wide: true) : Get(name);

    static Device Get(string name, bool wide)
    {
        lock (Gate)
        {
            var key = name + " (wide groups)";
            if (!Opened.TryGetValue(key, out var device))
                Opened[key] = device = Device.Open(name);
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
    /// <summary>Every product on packed weights first checks them against a fresh pack: a stale copy fails its test.</summary>
    [OneTimeSetUp]
    public void SetUp() => SddIlgpu.Tensors.Managed.ManagedWeightPacking.Verify = true;

    [OneTimeTearDown]
    public void TearDown() => TestDevices.DisposeAll();
}
