// Transparent huge pages for big host arenas on Linux: the managed GEMM streams weights, activations and
// gradients with long strides, and AdamW sweeps ~200 MB a step; 4 KiB pages turn that into TLB misses
// (Zen 4's L2 TLB covers 12 MiB of them, 6 GiB of 2 MiB ones).
using System.Runtime.InteropServices;

namespace SddIlgpu.Tensors;

internal static partial class HugePages
{
    /// <summary>Size of a transparent huge page on x86-64 and most arm64 kernels (bytes).</summary>
    public const long Size = 2L << 20;

    const int MadvHugepage = 14; // madvise(2): back the range with huge pages on fault and via khugepaged

    [LibraryImport("libc", SetLastError = true)]
    private static partial int madvise(nint address, nuint length, int advice);

    /// <summary>
    /// Asks the kernel (madvise(2) MADV_HUGEPAGE) to back the whole 2 MiB pages inside [start, start + bytes) with
    /// transparent huge pages. Call before the memory is first touched: pages fault in as huge ones where the
    /// system allows it (THP "madvise" or "always"). Only an optimisation: on other systems, or when the call is
    /// refused, nothing changes. Ranges under 4 MiB (at most one whole huge page) are left alone. Returns the bytes advised.
    /// </summary>
    public static long Advise(nint start, long bytes)
    {
        if (!OperatingSystem.IsLinux() || bytes < 2 * Size)
            return 0;
        var first = (start + (nint)(Size - 1)) & ~(nint)(Size - 1);
        var end = (start + (nint)bytes) & ~(nint)(Size - 1);
        if (end <= first)
            return 0;
        try
        {
            return madvise(first, (nuint)(end - first), MadvHugepage) == 0 ? end - first : 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return 0;
        }
    }
}
