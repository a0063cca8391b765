// Deterministic sums on host memory: the input is cut into fixed chunks of ChunkSize elements (independent
// of thread count), each chunk summed with a fixed lane structure, then the chunk sums added in order in
// double. Same input → same bits, on any schedule and core count.
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Managed;

internal sealed class ManagedReduction : IReductionOps
{
    internal const int ChunkSize = 16_384;

    readonly Device device;
    double[] partials = new double[64];

    public ManagedReduction(Device device) => this.device = device;

    public void SumSquares(Tensor x, Tensor output, int index) => Reduce(x, output, index, squares: true);

    public void Sum(Tensor x, Tensor output, int index) => Reduce(x, output, index, squares: false);

    void Reduce(Tensor x, Tensor output, int index, bool squares)
    {
        if ((uint)index >= output.Length)
            throw new ArgumentOutOfRangeException(nameof(index), $"Reduction output index {index} is outside {output.Name} {output.Shape}.");
        device.ThrowIfDisposed();
        device.Counters.CountLaunch();
        output.HostSpan()[index] = (float)SumChunked(x, squares);
    }

    /// <summary>Σ x (or Σ x²) over fixed chunks, chunk sums added in index order.</summary>
    internal double SumChunked(Tensor x, bool squares)
    {
        var n = IntLength(x, "Reduction");
        var chunks = (n + ChunkSize - 1) / ChunkSize;
        if (partials.Length < chunks)
            partials = new double[Math.Max(chunks, 2 * partials.Length)]; // grows once to the largest input
        var p = partials;
        ManagedSimd.Rows(chunks, ChunkSize, (s, e) =>
        {
            var span = x.HostSpan();
            for (var c = s; c < e; c++)
            {
                var chunk = span.Slice(c * ChunkSize, Math.Min(ChunkSize, n - c * ChunkSize));
                p[c] = squares ? ManagedSimd.Dot(chunk, chunk) : ManagedSimd.Sum(chunk);
            }
        });
        double total = 0;
        for (var c = 0; c < chunks; c++)
            total += p[c];
        return total;
    }

    internal static int IntLength(Tensor t, string op) =>
        t.Length <= int.MaxValue ? (int)t.Length
        : throw new ArgumentException($"{op}: {t.Name} has {t.Length} elements; host spans hold at most {int.MaxValue}.");
}
