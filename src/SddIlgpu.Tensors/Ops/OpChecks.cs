// Host-side shape checks shared by every implementation of an op, so the ILGPU kernels and the managed
// CPU path reject exactly the same inputs with the same messages.
namespace SddIlgpu.Tensors.Ops;

internal static class OpChecks
{
    /// <summary>Checks rotary-embedding operands and returns T (from the table).</summary>
    public static int RopeSeqLen(string op, Tensor x, Tensor y, Tensor table, int headDim)
    {
        if (x.Length != y.Length)
            throw new ArgumentException($"{op}: {x.Name} {x.Shape} and {y.Name} {y.Shape} must have the same number of elements ({x.Length} vs {y.Length}).");
        if (headDim <= 0 || headDim % 2 != 0)
            throw new ArgumentException($"{op}: head dimension {headDim} must be positive and even.");
        if (x.Shape.Last % headDim != 0)
            throw new ArgumentException($"{op}: the last axis of {x.Name} {x.Shape} must be H·HS, a multiple of HS = {headDim}.");
        if (table.Length % headDim != 0)
            throw new ArgumentException($"{op}: table {table.Name} {table.Shape} must be (T, HS/2, 2) for HS = {headDim}.");
        var seqLen = (int)(table.Length / headDim);
        if (x.Shape.Rows % seqLen != 0 || (x.Shape.Rank >= 3 && x.Shape[-2] != seqLen))
            throw new ArgumentException($"{op}: {x.Name} {x.Shape} must be (B, T, H·HS) with T = {seqLen} from the table {table.Name} {table.Shape}.");
        return seqLen;
    }
}
