// The SDD layer of Wang et al. (arXiv 2502.15499, Eq. 5): y = α ⊙ norm(V x), norm(z) = z / sqrt(mean(z²) + eps)
// over the full output width. Code-faithful composition: linear, then an RMS norm whose gain is α (the authors'
// o_norm, down_norm); paper-literal: gainless norm, then α (sdd-paper's .alpha). α ⊙ (z·rstd) = RMSN_α(z), so both
// run the same norm op; they differ in the parameter's name, kind and initialisation, not in the arithmetic.
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Layers;

/// <summary>Which reading of the SDD layer a <see cref="SddLinear"/> is.</summary>
public enum SddComposition
{
    /// <summary>Linear then RMS norm with a gain (the authors' code: the gain is a norm weight).</summary>
    Code,
    /// <summary>Gainless norm of the linear output, then α (paper Figure 2: the scale is a separate .alpha).</summary>
    Paper,
}

/// <summary>y (R, Out) = α ⊙ norm(x (R, In) · Vᵀ), V (Out, In), α (Out).</summary>
public sealed class SddLinear
{
    readonly Tensor z, dZ;

    public SddLinear(OpSet ops, Parameter weight, Parameter alpha, SddComposition composition, float eps, Arena activations, int rows, string name)
    {
        ArgumentNullException.ThrowIfNull(activations);
        Linear = new Linear(ops, weight);
        Composition = composition;
        z = activations.Take((rows, Linear.Out), name + ".z");
        dZ = activations.Take((rows, Linear.Out), name + ".dZ");
        Norm = new RmsNorm(ops, alpha, Linear.Out, Linear.Out, eps, activations, rows, name + ".norm");
    }

    public Linear Linear { get; }
    public RmsNorm Norm { get; }
    public SddComposition Composition { get; }
    public Parameter Weight => Linear.Weight;
    public Parameter Alpha => Norm.Gain!;

    /// <summary>Activation elements this layer takes from its arena: z, dZ and rstd.</summary>
    public static long ActivationLength(int rows, int outFeatures) => checked(2L * rows * outFeatures + rows);

    /// <summary>z = x·Vᵀ (saved), y = α ⊙ z·rstd.</summary>
    public void Forward(Tensor x, Tensor y)
    {
        Linear.Forward(x, z);
        Norm.Forward(z, y);
    }

    /// <summary>dZ = norm backward of dY (dα accumulated), then dV += dZᵀ·x and dX = dZ·V (overwritten or accumulated).</summary>
    public void Backward(Tensor dY, Tensor x, Tensor dX, bool accumulate = false)
    {
        BackwardWeight(dY, x);
        BackwardInput(dX, accumulate);
    }

    /// <summary>The first half of Backward: dZ = norm backward of dY (dα accumulated), dV += dZᵀ·x.</summary>
    public void BackwardWeight(Tensor dY, Tensor x) => Linear.BackwardWeight(BackwardNorm(dY), new MatrixLayout(Linear.Out), x);

    /// <summary>
    /// The part of <see cref="BackwardWeight"/> before the weight gradient: dZ (R, Out) from dY through the norm, α's
    /// gradient accumulated. Returns dZ, the dY of the weight-gradient GEMM (for <see cref="Linear.BackwardWeights"/>),
    /// which <see cref="BackwardInput"/> then reads.
    /// </summary>
    public Tensor BackwardNorm(Tensor dY)
    {
        Norm.Backward(dY, z, dZ);
        return dZ;
    }

    /// <summary>The second half: dX = dZ·V from the dZ of the last <see cref="BackwardWeight"/>.</summary>
    public void BackwardInput(Tensor dX, bool accumulate) => Linear.BackwardInput(dZ, new MatrixLayout(Linear.Out), dX, accumulate);
}
