// Rotary position embedding, half-split convention (spec §3): pair (i, i + HS/2) rotated by t·θ^(−2i/HS).
// The (cos, sin) table is built once on the host in double (RopeTable) and uploaded at construction.
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Layers;

/// <summary>Rotates (B, T, H·HS) queries or keys in place; backward rotates the gradient back.</summary>
public sealed class Rotary
{
    readonly OpSet ops;

    public Rotary(OpSet ops, int seqLen, int headDim, double theta, Arena activations)
    {
        ArgumentNullException.ThrowIfNull(ops);
        ArgumentNullException.ThrowIfNull(activations);
        this.ops = ops;
        HeadDim = headDim;
        Table = activations.Take((seqLen, headDim / 2, 2), "rope.table");
        Table.Upload(RopeTable.Build(seqLen, headDim, theta));
    }

    public int HeadDim { get; }

    /// <summary>(T, HS/2, 2): cos, sin.</summary>
    public Tensor Table { get; }

    public static long ActivationLength(int seqLen, int headDim) => checked((long)seqLen * headDim);

    /// <summary>y (B, T, H·HS) = rope(x); y may alias x.</summary>
    public void Forward(Tensor x, Tensor y) => ops.Rope.Forward(x, y, Table, HeadDim);

    /// <summary>dX = rope⁻¹(dY); dX may alias dY.</summary>
    public void Backward(Tensor dY, Tensor dX) => ops.Rope.Backward(dY, dX, Table, HeadDim);
}
