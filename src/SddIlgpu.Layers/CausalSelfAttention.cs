// The attention sub-layer of spec §3 and sdd_reference.attention: q, k, v projections (GQA: KVH kv heads),
// sdd-code's per-head q/k norms with one shared gain, half-split RoPE, causal softmax attention, sdd-code's
// ctx norm, the output projection (with o_norm for sdd-code, α for sdd-paper). Backward is the forward reversed.
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Layers;

/// <summary>h (B·T, C) → Output (B·T, C) for one block, with every saved activation allocated at construction.</summary>
public sealed class CausalSelfAttention
{
    readonly OpSet ops;
    readonly AttentionShape shape;
    readonly Rotary rope;
    readonly Projection projQ, projK, projV, projO;
    readonly RmsNorm? qNorm, kNorm, ctxNorm;
    readonly Tensor? qLin, kLin, ctxNormed;
    readonly Tensor q, k, v, saved, ctx, dQ, dK, dV, dCtx, scratch;

    /// <param name="weights">Parameters <c>blocks.{block}.attn.*</c>.</param>
    /// <param name="block">Block index i.</param>
    /// <param name="batch">B (T is the config's SeqLen).</param>
    /// <param name="rope">The shared rotary table.</param>
    /// <param name="scratch">The attention backward's scratch (<see cref="IAttentionStorage.ScratchLength"/> of the device's
    /// attention: (B, NH, T, T) materialised, (B, NH, T) fused), shared by every attention layer of a model.</param>
    /// <param name="activations">Arena for saved activations and gradient buffers (see <see cref="ActivationLength"/>).</param>
    public CausalSelfAttention(ModelWeights weights, int block, int batch, Rotary rope, Tensor scratch, Arena activations)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(activations);
        var c = weights.Config;
        ops = weights.Ops;
        this.rope = rope;
        shape = Shape(c, batch);
        ArgumentNullException.ThrowIfNull(scratch);
        scratch.ExpectLength(ops.Attention.ScratchLength(shape), "attention scratch");
        this.scratch = scratch;
        int n = batch * c.SeqLen, qw = c.NHead * c.HeadDim, kw = c.NKvHead * c.HeadDim;
        var p = $"blocks.{block}.attn.";
        bool code = c.Linear == LinearKind.SddCode, paper = c.Linear == LinearKind.SddPaper;
        Parameter? Alpha(string lin) => paper ? weights[p + lin + ".alpha"] : null;
        var comp = paper ? SddComposition.Paper : SddComposition.Code;
        projQ = new Projection(ops, weights[p + "wq.weight"], Alpha("wq"), comp, c.NormEps, activations, n, p + "wq");
        projK = new Projection(ops, weights[p + "wk.weight"], Alpha("wk"), comp, c.NormEps, activations, n, p + "wk");
        projV = new Projection(ops, weights[p + "wv.weight"], Alpha("wv"), comp, c.NormEps, activations, n, p + "wv");
        projO = new Projection(ops, weights[p + "wo.weight"], code ? weights[p + "o_norm.weight"] : Alpha("wo"), comp, c.NormEps, activations, n, p + "wo");
        if (code)
        {
            qLin = activations.Take((n, qw), p + "q_lin");
            kLin = activations.Take((n, kw), p + "k_lin");
            ctxNormed = activations.Take((n, qw), p + "ctx_normed");
            qNorm = new RmsNorm(ops, weights[p + "q_norm.weight"], qw, c.HeadDim, c.NormEps, activations, n, p + "q_norm");
            kNorm = new RmsNorm(ops, weights[p + "k_norm.weight"], kw, c.HeadDim, c.NormEps, activations, n, p + "k_norm");
            ctxNorm = new RmsNorm(ops, weights[p + "ctx_norm.weight"], qw, qw, c.NormEps, activations, n, p + "ctx_norm");
        }
        q = activations.Take((batch, c.SeqLen, qw), p + "q");
        k = activations.Take((batch, c.SeqLen, kw), p + "k");
        v = activations.Take((batch, c.SeqLen, kw), p + "v");
        saved = activations.Take(checked((int)ops.Attention.SavedLength(shape)), p + "attn_saved");
        ctx = activations.Take((batch, c.SeqLen, qw), p + "ctx");
        Output = activations.Take((n, c.DModel), p + "out");
        dQ = activations.Take((batch, c.SeqLen, qw), p + "dQ");
        dK = activations.Take((batch, c.SeqLen, kw), p + "dK");
        dV = activations.Take((batch, c.SeqLen, kw), p + "dV");
        dCtx = activations.Take((batch, c.SeqLen, qw), p + "dCtx");
    }

    /// <summary>The sub-layer's output (B·T, C).</summary>
    public Tensor Output { get; }

    /// <summary>
    /// Arena elements the constructor takes with <paramref name="attention"/>'s storage plan (the attention scratch
    /// and the rope table are not counted: they are shared).
    /// </summary>
    public static long ActivationLength(ModelConfig c, int batch, IAttentionStorage attention)
    {
        ArgumentNullException.ThrowIfNull(c);
        ArgumentNullException.ThrowIfNull(attention);
        bool code = c.Linear == LinearKind.SddCode, paper = c.Linear == LinearKind.SddPaper;
        checked
        {
            int rows = batch * c.SeqLen, qw = c.NHead * c.HeadDim, kw = c.NKvHead * c.HeadDim;
            long n = rows;
            var total = Projection.ActivationLength(paper, rows, qw) + 2 * Projection.ActivationLength(paper, rows, kw)
                + Projection.ActivationLength(paper || code, rows, c.DModel);
            if (code)
                total += n * (2L * qw + kw) + RmsNorm.ActivationLength(rows, qw, c.HeadDim)
                    + RmsNorm.ActivationLength(rows, kw, c.HeadDim) + RmsNorm.ActivationLength(rows, qw, qw);
            total += n * (qw + 2L * kw) + attention.SavedLength(Shape(c, batch)) + n * qw + n * c.DModel;
            total += n * (qw + 2L * kw) + n * qw;
            return total;
        }
    }

    /// <summary>The attention call's sizes for (config, B).</summary>
    public static AttentionShape Shape(ModelConfig c, int batch)
    {
        ArgumentNullException.ThrowIfNull(c);
        return new AttentionShape(batch, c.SeqLen, c.NHead, c.NKvHead, c.HeadDim);
    }

    /// <summary>Output = attention(h), saving what backward needs.</summary>
    public void Forward(Tensor h)
    {
        projQ.Forward(h, qLin ?? q);
        projK.Forward(h, kLin ?? k);
        projV.Forward(h, v);
        if (qNorm is not null)
        {
            qNorm.Forward(qLin!, q);
            kNorm!.Forward(kLin!, k);
        }
        rope.Forward(q, q);
        rope.Forward(k, k);
        ops.Attention.Forward(shape, q, k, v, saved, ctx);
        ctxNorm?.Forward(ctx, ctxNormed!);
        projO.Forward(ctxNormed ?? ctx, Output);
    }

    /// <summary>dH (B·T, C) overwritten with the gradient through this sub-layer; parameter gradients accumulated.</summary>
    public void Backward(Tensor dOut, Tensor h, Tensor dH)
    {
        projO.Backward(dOut, ctxNormed ?? ctx, dCtx, accumulate: false);
        ctxNorm?.Backward(dCtx, ctx, dCtx);
        ops.Attention.Backward(shape, dCtx, q, k, v, ctx, saved, scratch, dQ, dK, dV);
        rope.Backward(dQ, dQ);
        rope.Backward(dK, dK);
        if (qNorm is not null)
        {
            qNorm.Backward(dQ, qLin!, dQ);
            kNorm!.Backward(dK, kLin!, dK);
        }
        // Every weight gradient (one grouped GEMM: h is packed once), then every input gradient: h and the fresh dQ,
        // dK, dV are read while in cache.
        Linear.BackwardWeights(h, projV.WeightGradient(dV), projK.WeightGradient(dK), projQ.WeightGradient(dQ));
        projV.BackwardInput(dV, dH, accumulate: false);
        projK.BackwardInput(dK, dH, accumulate: true);
        projQ.BackwardInput(dQ, dH, accumulate: true);
    }
}
