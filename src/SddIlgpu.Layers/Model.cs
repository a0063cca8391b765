// The full decoder of spec §3: tied embedding, L transformer blocks, final RMS norm, LM head x·Eᵀ, mean
// cross-entropy. Activations for a fixed (B, T = SeqLen) live in one arena allocated at construction, so a
// training step allocates nothing. Backward is the straight-line reverse (llm.c gpt2_backward).
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Layers;

/// <summary>Forward, loss and backward of a model over its weights for batches of (B, T).</summary>
public sealed class Model : IDisposable
{
    readonly OpSet ops;
    readonly Arena activations;
    readonly Parameter embed;
    readonly TransformerBlock[] blocks;
    readonly RmsNorm finalNorm;
    readonly Tensor x0, xFinal, logits2d, losses, dResidual, dXFinal;
    readonly int n;
    bool haveLossGradient;

    public Model(ModelWeights weights, int batch)
    {
        ArgumentNullException.ThrowIfNull(weights);
        if (batch <= 0)
            throw new ArgumentOutOfRangeException(nameof(batch), $"Batch size must be positive; got {batch}.");
        var c = weights.Config;
        Weights = weights;
        Batch = batch;
        ops = weights.Ops;
        n = batch * c.SeqLen;
        var capacity = ActivationLength(c, batch, ops.Attention, ops.FusedFfn is not null);
        activations = weights.Device.Allocate(capacity, "activations");
        try
        {
            embed = weights["embed.weight"];
            Tokens = activations.Take((batch, c.SeqLen), "tokens");
            Targets = activations.Take((batch, c.SeqLen), "targets");
            Logits = activations.Take((batch, c.SeqLen, c.Vocab), "logits");
            logits2d = Logits.Reshape((n, c.Vocab));
            losses = activations.Take(n, "losses");
            Loss = activations.Take(1, "loss");
            x0 = activations.Take((n, c.DModel), "x0");
            xFinal = activations.Take((n, c.DModel), "x_final");
            dResidual = activations.Take((n, c.DModel), "dResidual");
            dXFinal = activations.Take((n, c.DModel), "dX_final");
            var dH = activations.Take((n, c.DModel), "dH");
            var dTmp = activations.Take((n, c.DModel), "dTmp");
            var attentionScratch = activations.Take(checked((int)ops.Attention.ScratchLength(CausalSelfAttention.Shape(c, batch))), "attention_scratch");
            var rope = new Rotary(ops, c.SeqLen, c.HeadDim, c.RopeTheta, activations);
            finalNorm = new RmsNorm(ops, weights["final_norm.weight"], c.DModel, c.DModel, c.NormEps, activations, n, "final_norm");
            blocks = new TransformerBlock[c.NLayer];
            for (var i = 0; i < c.NLayer; i++)
                blocks[i] = new TransformerBlock(weights, i, batch, rope, attentionScratch, dH, dTmp, activations);
            if (activations.Used != capacity)
                throw new InvalidOperationException($"Activation arena sized {capacity} but the layers took {activations.Used}: a layer's ActivationLength is wrong.");
        }
        catch
        {
            activations.Dispose();
            throw;
        }
    }

    public ModelWeights Weights { get; }
    public ModelConfig Config => Weights.Config;
    public int Batch { get; }
    public IReadOnlyList<TransformerBlock> Blocks => blocks;

    /// <summary>(B, T) token ids as exact floats. Fill it through <see cref="Upload"/>, which checks the ids.</summary>
    public Tensor Tokens { get; }

    /// <summary>(B, T) next-token ids as exact floats. Fill it through <see cref="Upload"/>, which checks the ids.</summary>
    public Tensor Targets { get; }

    /// <summary>(B, T, V). After <see cref="ForwardLoss"/> it holds dLogits (the buffer is shared, as in llm.c).</summary>
    public Tensor Logits { get; }

    /// <summary>(1) mean cross-entropy, written by <see cref="ForwardLoss"/>.</summary>
    public Tensor Loss { get; }

    /// <summary>
    /// Elements of the activation arena for (config, B) on a device whose attention has the storage plan
    /// <paramref name="attention"/> (<c>device.Ops.Attention</c>, or <see cref="AttentionStorage.For"/> its kind) and,
    /// with <paramref name="fusedFfn"/>, fused FFN ops (<c>device.Ops.FusedFfn is not null</c>: the <c>cpu</c> device), which
    /// store no normalised [up | gate] for sdd-code; without it, the larger plan: what the constructor takes, checked
    /// against the arena. Throws <see cref="OverflowException"/> when B·T or a length does not fit the int rows and
    /// long sizes the layers use.
    /// </summary>
    public static long ActivationLength(ModelConfig c, int batch, IAttentionStorage attention, bool fusedFfn = false)
    {
        ArgumentNullException.ThrowIfNull(c);
        ArgumentNullException.ThrowIfNull(attention);
        checked
        {
            var rows = batch * c.SeqLen;
            long n = rows;
            return 2 * n + n * c.Vocab + n + 1 + 6 * n * c.DModel + attention.ScratchLength(CausalSelfAttention.Shape(c, batch))
                + Rotary.ActivationLength(c.SeqLen, c.HeadDim) + RmsNorm.ActivationLength(rows, c.DModel, c.DModel)
                + c.NLayer * TransformerBlock.ActivationLength(c, batch, attention, fusedFfn);
        }
    }

    /// <summary>
    /// Uploads <paramref name="tokens"/> (B, T) into <see cref="Tokens"/> and, unless it is empty,
    /// <paramref name="targets"/> (B, T) into <see cref="Targets"/>. Every id must be an integer in [0, V): the
    /// kernels index the embedding and the logits with it unchecked, so a bad id is refused here with an
    /// <see cref="ArgumentOutOfRangeException"/> that names its position.
    /// </summary>
    public void Upload(ReadOnlySpan<float> tokens, ReadOnlySpan<float> targets)
    {
        CheckIds(tokens, "token");
        Tokens.Upload(tokens);
        if (targets.IsEmpty)
            return;
        CheckIds(targets, "target");
        Targets.Upload(targets);
    }

    void CheckIds(ReadOnlySpan<float> ids, string what)
    {
        for (var i = 0; i < ids.Length; i++)
        {
            var id = ids[i];
            if (!(id >= 0 && id < Config.Vocab && id == MathF.Floor(id)))
                throw new ArgumentOutOfRangeException(nameof(ids),
                    $"The {what} id {id} at position {i} (row {i / Config.SeqLen}, column {i % Config.SeqLen}) is not a token of this model's vocabulary [0, {Config.Vocab}).");
        }
    }

    /// <summary>Logits from Tokens.</summary>
    public void Forward()
    {
        haveLossGradient = false;
        ops.Embedding.Forward(Tokens, embed.Value, x0);
        var x = x0;
        foreach (var block in blocks)
        {
            block.Forward(x);
            x = block.Output;
        }
        finalNorm.Forward(x, xFinal);
        var c = Config;
        ops.Gemm.Gemm(new GemmSpec(n, c.Vocab, c.DModel, TransB: true), xFinal, new MatrixLayout(c.DModel),
            embed.Value, new MatrixLayout(c.DModel), logits2d, new MatrixLayout(c.Vocab));
    }

    /// <summary>Forward, Loss = mean cross-entropy against Targets, and dLogits = (softmax − onehot)·gradScale into Logits.</summary>
    public void ForwardLoss(float gradScale)
    {
        Forward();
        ops.Loss.CrossEntropy(logits2d, Targets, losses, Loss, logits2d, gradScale);
        haveLossGradient = true;
    }

    /// <summary>After <see cref="ForwardLoss"/>: ACCUMULATES every parameter's gradient into the weights' Grads.</summary>
    public void Backward()
    {
        if (!haveLossGradient)
            throw new InvalidOperationException("Backward needs ForwardLoss first (Forward alone leaves no loss gradient).");
        var c = Config;
        var dLogits = logits2d;
        ops.Gemm.Gemm(new GemmSpec(n, c.DModel, c.Vocab), dLogits, new MatrixLayout(c.Vocab),
            embed.Value, new MatrixLayout(c.DModel), dXFinal, new MatrixLayout(c.DModel));
        ops.Gemm.Gemm(new GemmSpec(c.Vocab, c.DModel, n, TransA: true, Beta: 1f), dLogits, new MatrixLayout(c.Vocab),
            xFinal, new MatrixLayout(c.DModel), embed.Grad, new MatrixLayout(c.DModel));
        finalNorm.Backward(dXFinal, blocks.Length > 0 ? blocks[^1].Output : x0, dResidual);
        for (var i = blocks.Length - 1; i >= 0; i--)
            blocks[i].Backward(dResidual);
        ops.Embedding.Backward(Tokens, dResidual, embed.Grad);
        haveLossGradient = false;
    }

    public void Dispose() => activations.Dispose();
}
