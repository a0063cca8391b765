// Which OpenCL devices the opencl back end accepts, and the one place that overrides ILGPU's capability check.
// ILGPU 1.5.3 refuses OpenCL 3.0 devices without the generic address space (PoCL 3.1, NVIDIA's OpenCL 3.0), yet at
// OptimizationLevel.O2 the OpenCL C it writes for our kernels qualifies every pointer global or local and never
// uses __generic (CrossCompileTests asserts this for every kernel), so those devices build and run every kernel.
using System.Reflection;
using ILGPU;
using ILGPU.Backends.OpenCL;
using ILGPU.Runtime.OpenCL;

namespace SddIlgpu.Tensors;

/// <summary>
/// The acceptance rule for OpenCL devices: OpenCL C 2.0 or later through <c>-cl-std</c> (ILGPU's minimum), and
/// either the generic address space or our O2 kernels that do not need it. Devices accepted without the generic
/// address space get ILGPU's internal <c>CLCapabilityContext.GenericAddressSpace</c> set to true before the
/// accelerator is created; every kernel is then compiled at open, so a kernel the device cannot build fails the open
/// with the kernel's name instead of running wrong.
/// </summary>
internal static class OpenClAcceptance
{
    /// <summary>The ILGPU version whose internals <see cref="AllowWithoutGenericAddressSpace"/> was checked against.</summary>
    public const string PinnedIlgpuVersion = "1.5.3";

    /// <summary>Kernels for OpenCL are always compiled at O2: at O1 ILGPU writes __generic pointers for every kernel.</summary>
    public const OptimizationLevel Optimization = OptimizationLevel.O2;

    /// <summary>What <c>sdd devices</c> says about a device accepted through the override.</summary>
    public const string OverrideNote =
        "accepted without the generic address space: kernels are compiled at O2, where ILGPU's OpenCL C never uses __generic; every kernel is built at open";

    /// <summary>Devices the opencl back end opens (the predicate of the ILGPU context).</summary>
    public static bool Accepts(CLDevice device) => device.CLStdVersion >= CLBackend.MinimumVersion;

    /// <summary>True when the device is accepted only because of the override.</summary>
    public static bool NeedsOverride(CLDevice device) => Accepts(device) && !device.Capabilities.GenericAddressSpace;

    /// <summary>Why ILGPU's own rule would reject the device, or null.</summary>
    public static string? RejectionReason(CLDevice device) =>
        Accepts(device) ? null
        : $"OpenCL {device.DeviceVersion} with OpenCL C {device.CVersion} is below the OpenCL C 2.0 that ILGPU needs";

    /// <summary>
    /// Sets ILGPU's internal <c>CLCapabilityContext.GenericAddressSpace</c> of <paramref name="device"/> to true so that
    /// <c>CLAccelerator</c>'s constructor (which throws <c>CapabilityNotSupportedException</c> otherwise) accepts it and
    /// the back end is created with that capability. Checked against ILGPU 1.5.3's source
    /// (Runtime/OpenCL/CLAccelerator.cs, CLCapabilityContext's generated non-public setter).
    /// </summary>
    /// <exception cref="InvalidOperationException">ILGPU is not 1.5.3 or the internal member is missing.</exception>
    public static void AllowWithoutGenericAddressSpace(CLDevice device)
    {
        if (!NeedsOverride(device))
            return;
        if (Device.IlgpuVersion != PinnedIlgpuVersion)
            throw new InvalidOperationException(
                $"OpenCL device '{device.Name}' lacks the generic address space; the override that accepts it was checked against ILGPU {PinnedIlgpuVersion} only, but this build runs ILGPU {Device.IlgpuVersion}. Re-check OpenClAcceptance against the new ILGPU source.");
        var property = typeof(CLCapabilityContext).GetProperty("GenericAddressSpace", BindingFlags.Instance | BindingFlags.Public);
        var setter = property?.GetSetMethod(nonPublic: true);
        if (property is null || setter is null || property.PropertyType != typeof(bool))
            throw new InvalidOperationException(
                $"ILGPU {Device.IlgpuVersion} has no settable CLCapabilityContext.GenericAddressSpace; OpenCL device '{device.Name}' (no generic address space) cannot be accepted. Re-check OpenClAcceptance against the ILGPU source.");
        setter.Invoke(device.Capabilities, [true]);
        if (!device.Capabilities.GenericAddressSpace)
            throw new InvalidOperationException(
                $"Setting ILGPU's CLCapabilityContext.GenericAddressSpace had no effect for OpenCL device '{device.Name}'.");
    }
}
