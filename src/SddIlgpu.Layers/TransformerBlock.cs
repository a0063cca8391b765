// One transformer block of spec §3: attention then SwiGLU, each wired into the residual stream as
//   pre: x = x + S(RMSN(x))   post: h = RMSN(x); x = h + S(h)   deepnorm: h = RMSN(x); x = a·h + S(h), a = (2L)^(1/4).
// Backward runs the two sub-layers in reverse and carries the residual gradient in place.
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Layers;

/// <summary>x (B·T, C) → Output (B·T, C); the input x must stay unchanged until Backward.</summary>
public sealed class TransformerBlock
{
    readonly OpSet ops;
    readonly Residual residual;
    readonly float a;
    readonly RmsNorm attnNorm, ffnNorm;
    readonly Tensor attnH, mid, ffnH, dH, dTmp;
    readonly Action<Tensor> attnForward, ffnForward;
    readonly Action<Tensor, Tensor, Tensor> attnBackward, ffnBackward;
    Tensor? input;

    /// <param name="weights">Parameters <c>blocks.{block}.*</c>.</param>
    /// <param name="block">Block index i.</param>
    /// <param name="batch">B.</param>
    /// <param name="rope">The shared rotary table.</param>
    /// <param name="attentionScratch">The attention backward's scratch (its ScratchLength), shared by all blocks.</param>
    /// <param name="dH">(B·T, C) scratch shared by all blocks.</param>
    /// <param name="dTmp">(B·T, C) scratch shared by all blocks.</param>
    /// <param name="activations">Arena for this block's activations (see <see cref="ActivationLength"/>).</param>
    public TransformerBlock(ModelWeights weights, int block, int batch, Rotary rope, Tensor attentionScratch, Tensor dH, Tensor dTmp, Arena activations)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(activations);
        var c = weights.Config;
        ops = weights.Ops;
        residual = c.Residual;
        a = residual switch { Residual.DeepNorm => (float)Math.Pow(2.0 * c.NLayer, 0.25), _ => 1f };
        var n = batch * c.SeqLen;
        var p = $"blocks.{block}.";
        this.dH = dH.ExpectLength((long)n * c.DModel, "block dH");
        this.dTmp = dTmp.ExpectLength((long)n * c.DModel, "block dTmp");
        attnNorm = new RmsNorm(ops, weights[p + "attn_norm.weight"], c.DModel, c.DModel, c.NormEps, activations, n, p + "attn_norm");
        ffnNorm = new RmsNorm(ops, weights[p + "ffn_norm.weight"], c.DModel, c.DModel, c.NormEps, activations, n, p + "ffn_norm");
        attnH = activations.Take((n, c.DModel), p + "attn_h");
        mid = activations.Take((n, c.DModel), p + "mid");
        ffnH = activations.Take((n, c.DModel), p + "ffn_h");
        Output = activations.Take((n, c.DModel), p + "out");
        Attention = new CausalSelfAttention(weights, block, batch, rope, attentionScratch, activations);
        Ffn = new SwiGluFfn(weights, block, n, activations);
        (attnForward, ffnForward, attnBackward, ffnBackward) = (Attention.Forward, Ffn.Forward, Attention.Backward, Ffn.Backward);
    }

    public CausalSelfAttention Attention { get; }
    public SwiGluFfn Ffn { get; }

    /// <summary>The block's output (B·T, C).</summary>
    public Tensor Output { get; }

    /// <summary>The residual multiplier a: (2L)^(1/4) for deepnorm, else 1.</summary>
    public float ResidualScale => a;

    /// <summary>Arena elements one block takes with <paramref name="attention"/>'s storage plan (and the FFN's, <see cref="SwiGluFfn.ActivationLength"/>).</summary>
    public static long ActivationLength(ModelConfig c, int batch, IAttentionStorage attention, bool fusedFfn)
    {
        ArgumentNullException.ThrowIfNull(c);
        checked
        {
            var n = batch * c.SeqLen;
            return 2 * RmsNorm.ActivationLength(n, c.DModel, c.DModel) + 4L * n * c.DModel
                + CausalSelfAttention.ActivationLength(c, batch, attention) + SwiGluFfn.ActivationLength(c, n, fusedFfn);
        }
    }

    public void Forward(Tensor x)
    {
        input = x;
        Step(attnNorm, x, attnH, attnForward, Attention.Output, mid);
        Step(ffnNorm, mid, ffnH, ffnForward, Ffn.Output, Output);
    }

    /// <summary>On entry dX is the gradient w.r.t. Output; on return, w.r.t. the block's input (in place).</summary>
    public void Backward(Tensor dX)
    {
        var x = input ?? throw new InvalidOperationException("Backward needs a Forward first.");
        StepBack(ffnNorm, mid, ffnH, ffnBackward, dX);
        StepBack(attnNorm, x, attnH, attnBackward, dX);
    }

    void Step(RmsNorm norm, Tensor x, Tensor h, Action<Tensor> sub, Tensor s, Tensor y)
    {
        norm.Forward(x, h);
        sub(h);
        switch (residual)
        {
            case Residual.Pre:
                ops.Elementwise.Add(x, s, y);
                break;
            case Residual.Post:
                ops.Elementwise.Add(h, s, y);
                break;
            default:
                ops.Elementwise.Scale(h, a, y);
                ops.Elementwise.Add(y, s, y);
                break;
        }
    }

    void StepBack(RmsNorm norm, Tensor x, Tensor h, Action<Tensor, Tensor, Tensor> subBackward, Tensor dY)
    {
        subBackward(dY, h, dH);
        if (residual == Residual.Pre)
        {
            norm.Backward(dH, x, dTmp);
            ops.Elementwise.Add(dY, dTmp, dY);
        }
        else
        {
            ops.Elementwise.Axpy(a, dY, dH);
            norm.Backward(dH, x, dY);
        }
    }
}
