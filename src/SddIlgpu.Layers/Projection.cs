// lin_X of spec §3 inside attention and the feed-forward: x·Wᵀ, or an SDD layer α ⊙ norm(x·Wᵀ) when a scale
// parameter is given (sdd-paper's .alpha, or sdd-code's o_norm / down_norm gain right after wo / w_down).
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Layers;

/// <summary>A linear map that is either plain or SDD, with one Forward/Backward for both.</summary>
internal sealed class Projection
{
    readonly Linear? plain;
    readonly SddLinear? sdd;

    public Projection(OpSet ops, Parameter weight, Parameter? scale, SddComposition composition, float eps, Arena activations, int rows, string name)
    {
        if (scale is null)
            plain = new Linear(ops, weight);
        else
            sdd = new SddLinear(ops, weight, scale, composition, eps, activations, rows, name);
    }

    public static long ActivationLength(bool isSdd, int rows, int outFeatures) =>
        isSdd ? SddLinear.ActivationLength(rows, outFeatures) : 0;

    public void Forward(Tensor x, Tensor y)
    {
        if (sdd is not null)
            sdd.Forward(x, y);
        else
            plain!.Forward(x, y);
    }

    public void Backward(Tensor dY, Tensor x, Tensor dX, bool accumulate)
    {
        BackwardWeight(dY, x);
        BackwardInput(dY, dX, accumulate);
    }

    /// <summary>The weight (and α) gradients only; <see cref="BackwardInput"/> then gives dX.</summary>
    public void BackwardWeight(Tensor dY, Tensor x)
    {
        if (sdd is not null)
            sdd.BackwardWeight(dY, x);
        else
            plain!.BackwardWeight(dY, new MatrixLayout(plain.Out), x);
    }

    /// <summary>
    /// What <see cref="BackwardWeight"/> does before its GEMM (an SDD layer's norm backward), then that GEMM's operands,
    /// for <see cref="Linear.BackwardWeights"/> to run with the other projections of the same input.
    /// </summary>
    public (Linear Linear, Tensor DY, MatrixLayout LdY) WeightGradient(Tensor dY) =>
        sdd is not null ? (sdd.Linear, sdd.BackwardNorm(dY), new MatrixLayout(sdd.Linear.Out)) : (plain!, dY, new MatrixLayout(plain!.Out));

    /// <summary>dX from the same dY as the last <see cref="BackwardWeight"/> (the SDD layer reuses its dZ).</summary>
    public void BackwardInput(Tensor dY, Tensor dX, bool accumulate)
    {
        if (sdd is not null)
            sdd.BackwardInput(dX, accumulate);
        else
            plain!.BackwardInput(dY, new MatrixLayout(plain.Out), dX, accumulate);
    }
}
