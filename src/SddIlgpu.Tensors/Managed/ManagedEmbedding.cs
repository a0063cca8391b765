// Token embedding on the host: y[n] = table[tokens[n]]; backward dTable[tokens[n]] += dY[n] in position
// order. The backward splits the columns (not the positions) across threads, so there are no races and
// each element of dTable receives its additions in the same order every run.
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Managed;

internal sealed class ManagedEmbedding(Device device) : IEmbeddingOps
{
    public void Forward(Tensor tokens, Tensor table, Tensor y)
    {
        var (n, c, vocab) = Check(tokens, table, y);
        Begin();
        ManagedSimd.Rows(n, c, (r0, r1) =>
        {
            ReadOnlySpan<float> tok = tokens.HostSpan(), tab = table.HostSpan();
            var ys = y.HostSpan();
            for (var r = r0; r < r1; r++)
                tab.Slice(Token(tok[r], vocab) * c, c).CopyTo(ys.Slice(r * c, c));
        });
    }

    public void Backward(Tensor tokens, Tensor dY, Tensor dTable)
    {
        var (n, c, vocab) = Check(tokens, dTable, dY);
        Begin();
        const int Block = 16; // columns per unit of work
        ManagedSimd.Rows((c + Block - 1) / Block, (long)n * Block, (b0, b1) =>
        {
            ReadOnlySpan<float> tok = tokens.HostSpan(), dys = dY.HostSpan();
            var dt = dTable.HostSpan();
            int j0 = b0 * Block, j1 = Math.Min(c, b1 * Block);
            for (var r = 0; r < n; r++)
                ManagedSimd.AddTo(dys.Slice(r * c + j0, j1 - j0), dt.Slice(Token(tok[r], vocab) * c + j0, j1 - j0));
        });
    }

    void Begin()
    {
        device.ThrowIfDisposed();
        device.Counters.CountLaunch();
    }

    static int Token(float id, int vocab)
    {
        var t = (int)id;
        if ((uint)t >= vocab || t != id)
            throw new ArgumentOutOfRangeException(nameof(id), $"Embedding: token id {id} is not an integer in [0, {vocab}).");
        return t;
    }

    static (int N, int C, int V) Check(Tensor tokens, Tensor table, Tensor y)
    {
        var c = table.Shape.Last;
        var n = (int)tokens.Length;
        if (y.Length != (long)n * c)
            throw new ArgumentException($"Embedding: {y.Name} {y.Shape} must be (N = {n}, C = {c}) for {tokens.Name} {tokens.Shape} and table {table.Name} {table.Shape}.");
        return (n, c, (int)(table.Length / c));
    }
}
