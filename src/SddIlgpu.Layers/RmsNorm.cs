// RMS normalisation of spec §3: y = g ⊙ x / sqrt(mean(x², group) + eps), over the whole row or per head
// with one gain shared by all heads, or gainless. rstd per group is saved for the backward pass.
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Layers;

/// <summary>RMS norm over rows (R, W) split into groups of <c>groupSize</c>; gain (groupSize) or none.</summary>
public sealed class RmsNorm
{
    readonly OpSet ops;
    readonly float eps;

    /// <param name="ops">The op set.</param>
    /// <param name="gain">The gain g (groupSize), or null for the gainless norm.</param>
    /// <param name="width">W, the row width.</param>
    /// <param name="groupSize">Values normalised together (W for a full-row norm, HS per head).</param>
    /// <param name="eps">Added to mean(x²).</param>
    /// <param name="activations">Arena the rstd buffer (R·W/groupSize) is taken from.</param>
    /// <param name="rows">R.</param>
    /// <param name="name">For buffer names.</param>
    public RmsNorm(OpSet ops, Parameter? gain, int width, int groupSize, float eps, Arena activations, int rows, string name)
    {
        ArgumentNullException.ThrowIfNull(ops);
        ArgumentNullException.ThrowIfNull(activations);
        if (groupSize <= 0 || width % groupSize != 0)
            throw new ArgumentException($"{name}: width {width} is not a whole number of groups of {groupSize}.");
        gain?.Value.ExpectLength(groupSize, $"{name} gain");
        this.ops = ops;
        this.eps = eps;
        Gain = gain;
        Width = width;
        GroupSize = groupSize;
        Rstd = activations.Take(checked((int)ActivationLength(rows, width, groupSize)), name + ".rstd");
    }

    public Parameter? Gain { get; }
    public int Width { get; }
    public int GroupSize { get; }

    /// <summary>1/sqrt(mean(x²) + eps) per group (R·W/groupSize), saved by Forward.</summary>
    public Tensor Rstd { get; }

    /// <summary>The ε added to mean(x²) (spec §3).</summary>
    public float Eps => eps;

    /// <summary>Activation elements this layer takes from its arena.</summary>
    public static long ActivationLength(int rows, int width, int groupSize) => checked((long)rows * width) / groupSize;

    /// <summary>y (R, W) = g ⊙ x·rstd. y may alias x.</summary>
    public void Forward(Tensor x, Tensor y) => ops.Norm.Forward(x, Gain?.Value, y, Rstd, GroupSize, eps);

    /// <summary>dX (R, W) overwritten (may alias dY); dGain accumulated.</summary>
    public void Backward(Tensor dY, Tensor x, Tensor dX) =>
        ops.Norm.Backward(dY, x, Gain?.Value, Rstd, dX, Gain?.Grad, GroupSize);
}
