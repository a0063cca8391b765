// The op families every back end implements. Layers call these and never launch kernels themselves.
// Gradient contract (see Ops/README.md): a backward op OVERWRITES the activation gradients it writes
// (dX, dQ, ...) and ACCUMULATES (+=) into parameter gradients (dWeight, dGain, dAlpha, dTable).
namespace SddIlgpu.Tensors.Ops;

/// <summary>
/// Where matrix z of a batched operand starts and how its rows are laid out. With
/// z = outer·BatchInner + inner, element (r, c) of matrix z is at
/// <c>Offset + outer·OuterStride + (inner / InnerDiv)·InnerStride + r·Ld + c</c>.
/// InnerDiv lets grouped-query attention map query head h to kv head h / (NH / KVH).
/// </summary>
public readonly record struct MatrixLayout(int Ld, long OuterStride = 0, long InnerStride = 0, int InnerDiv = 1, long Offset = 0);

/// <summary>
/// C = Alpha·op(A)·op(B) + Beta·C for BatchOuter·BatchInner matrices. op(A) is (M, K): A is stored (M, K),
/// or (K, M) when TransA. op(B) is (K, N): B is stored (K, N), or (N, K) when TransB. Beta = 0 never reads C.
/// </summary>
public readonly record struct GemmSpec(
    int M, int N, int K, bool TransA = false, bool TransB = false, float Alpha = 1f, float Beta = 0f,
    int BatchOuter = 1, int BatchInner = 1)
{
    public int BatchCount => BatchOuter * BatchInner;
}

/// <summary>
/// One member of a group of products that share their B operand (<see cref="IGemmOps.GemmSharedB"/>): op(A) is
/// (<paramref name="M"/>, K), C is (M, N), laid out as in <see cref="IGemmOps.Gemm"/>.
/// </summary>
public sealed record GemmMember(int M, Tensor A, MatrixLayout La, Tensor C, MatrixLayout Lc);

/// <summary>Matrix products.</summary>
public interface IGemmOps
{
    void Gemm(in GemmSpec spec, Tensor a, in MatrixLayout la, Tensor b, in MatrixLayout lb, Tensor c, in MatrixLayout lc);

    /// <summary>
    /// For each member g in order: C_g = Alpha·op(A_g)·op(B) + Beta·C_g with <paramref name="spec"/>'s N, K, transposes,
    /// α, β and batch and the member's M (spec.M is not read). This is a grouped GEMM whose members read one B: the
    /// weight gradients dW += dYᵀ·X of projections that share their input X (q, k and v; up and gate). Each C_g gets
    /// the bits of the equivalent <see cref="Gemm"/> call; a back end may prepare B once for the whole group (the
    /// managed GEMM packs it once), which is all this call adds. No C_g may overlap B or another member's A or C.
    /// </summary>
    /// <exception cref="ArgumentException">A member's operand does not fit its tensor (as <see cref="Gemm"/>).</exception>
    void GemmSharedB(in GemmSpec spec, IReadOnlyList<GemmMember> members, Tensor b, in MatrixLayout lb)
    {
        ArgumentNullException.ThrowIfNull(members);
        foreach (var m in members)
            Gemm(spec with { M = m.M }, m.A, m.La, b, lb, m.C, m.Lc);
    }
}

/// <summary>RMS normalisation over groups of the last axis.</summary>
public interface INormOps
{
    /// <summary>
    /// y = gain ⊙ x / sqrt(mean(x², group) + eps). Rows of x (R, W) are split into W / groupSize groups;
    /// gain (groupSize) is shared by all groups, or null for the gainless norm. rstd (R·W/groupSize) is saved.
    /// y may alias x.
    /// </summary>
    void Forward(Tensor x, Tensor? gain, Tensor y, Tensor rstd, int groupSize, float eps);

    /// <summary>dX (R, W) overwritten; dGain (groupSize) accumulated when gain is given. dX may alias dY.</summary>
    void Backward(Tensor dY, Tensor x, Tensor? gain, Tensor rstd, Tensor dX, Tensor? dGain, int groupSize);
}

/// <summary>Rotary position embedding, half-split convention: pair (i, i + HS/2) rotated by t·θ^(−2i/HS).</summary>
public interface IRopeOps
{
    /// <summary>x, y (B, T, H·HS); table (T, HS/2, 2) holds (cos, sin) (see <see cref="RopeTable"/>). y may alias x.</summary>
    void Forward(Tensor x, Tensor y, Tensor table, int headDim);

    /// <summary>dX = rotation by −angle of dY; dX may alias dY.</summary>
    void Backward(Tensor dY, Tensor dX, Tensor table, int headDim);
}

/// <summary>Sizes of one causal grouped-query attention call.</summary>
public readonly record struct AttentionShape(int B, int T, int NH, int KVH, int HS)
{
    public int Rep => NH / KVH;
    public float Scale => 1f / MathF.Sqrt(HS);
}

/// <summary>
/// How much memory an attention implementation needs besides q, k, v, ctx and their gradients, in float32 elements:
/// what the forward saves for the backward, and the backward's scratch. Layers size their buffers from it.
/// </summary>
public interface IAttentionStorage
{
    /// <summary>Elements the forward saves for the backward (the <c>saved</c> tensor).</summary>
    long SavedLength(in AttentionShape s);

    /// <summary>Elements of the backward's scratch (the <c>scratch</c> tensor), shareable by every layer.</summary>
    long ScratchLength(in AttentionShape s);
}

/// <summary>The two storage plans the back ends use.</summary>
public static class AttentionStorage
{
    /// <summary>
    /// Materialised softmax (the ILGPU kernels: GEMMs and a row softmax): saved = probabilities P (B, NH, T, T),
    /// scratch = dP / dS (B, NH, T, T).
    /// </summary>
    public static IAttentionStorage Materialized { get; } = new Plan(s => (long)s.B * s.NH * s.T * s.T, s => (long)s.B * s.NH * s.T * s.T);

    /// <summary>
    /// FlashAttention-2 (Dao 2023, Algorithms 1 and 2; the managed <c>cpu</c> device): saved = the per-row
    /// log-sum-exp L (B, NH, T) of the scaled scores, scratch = D = rowsum(dCtx ⊙ ctx) (B, NH, T).
    /// </summary>
    public static IAttentionStorage Fused { get; } = new Plan(s => (long)s.B * s.NH * s.T, s => (long)s.B * s.NH * s.T);

    /// <summary>The plan of a back end's attention: <see cref="Fused"/> on <see cref="BackendKind.Cpu"/>, else <see cref="Materialized"/>.</summary>
    public static IAttentionStorage For(BackendKind kind) => kind == BackendKind.Cpu ? Fused : Materialized;

    sealed class Plan(Func<AttentionShape, long> saved, Func<AttentionShape, long> scratch) : IAttentionStorage
    {
        public long SavedLength(in AttentionShape s) => checked(saved(s));
        public long ScratchLength(in AttentionShape s) => checked(scratch(s));
    }
}

/// <summary>
/// Causal multi-head attention with grouped-query heads (spec/model.md §3 attention). Each implementation says through
/// <see cref="IAttentionStorage"/> how long its <c>saved</c> and <c>scratch</c> tensors are.
/// </summary>
public interface IAttentionOps : IAttentionStorage
{
    /// <summary>
    /// q (B, T, NH·HS), k, v (B, T, KVH·HS) → ctx (B, T, NH·HS) = softmax(q·kᵀ/√HS + causal mask)·v per head;
    /// query head h reads kv head h / (NH / KVH). saved (<see cref="IAttentionStorage.SavedLength"/>) keeps what
    /// backward needs: the probabilities (B, NH, T, T) or the per-row log-sum-exp (B, NH, T).
    /// </summary>
    void Forward(in AttentionShape s, Tensor q, Tensor k, Tensor v, Tensor saved, Tensor ctx);

    /// <summary>
    /// dQ, dK, dV overwritten from dCtx and the forward's q, k, v, ctx and saved; scratch
    /// (<see cref="IAttentionStorage.ScratchLength"/>) is overwritten.
    /// </summary>
    void Backward(in AttentionShape s, Tensor dCtx, Tensor q, Tensor k, Tensor v, Tensor ctx, Tensor saved, Tensor scratch,
        Tensor dQ, Tensor dK, Tensor dV);

    /// <summary>In place over scores (Z, T, T): P = softmax(scale·S + causal mask) row by row (max-subtracted).</summary>
    void CausalSoftmaxForward(Tensor scores, float scale);

    /// <summary>In place over dProbs (Z, T, T): dS = scale · P ⊙ (dP − Σ_j dP·P). Masked entries become 0.</summary>
    void CausalSoftmaxBackward(Tensor probs, Tensor dProbs, float scale);
}

/// <summary>SwiGLU and last-axis concatenation.</summary>
public interface IActivationOps
{
    /// <summary>upGate (R, 2F) holds up in [:, :F] and gate in [:, F:]; s (R, F) = up ⊙ silu(gate).</summary>
    void SwiGluForward(Tensor upGate, Tensor s);

    /// <summary>dUpGate (R, 2F) overwritten.</summary>
    void SwiGluBackward(Tensor dS, Tensor upGate, Tensor dUpGate);

    /// <summary>y (R, Na + Nb) = [a (R, Na) | b (R, Nb)].</summary>
    void ConcatLast(Tensor a, Tensor b, Tensor y);

    /// <summary>a = y[:, :Na], b = y[:, Na:] (overwritten).</summary>
    void SplitLast(Tensor y, Tensor a, Tensor b);
}

/// <summary>
/// The sdd-code feed-forward's joint RMS norm over [up | gate] fused with SwiGLU, row by row (issue 14 item 4): one
/// pass instead of two each way, the same results bit for bit as <see cref="INormOps"/> then
/// <see cref="IActivationOps"/> (forward) and the reverse (backward). Optional: a device without it runs the two.
/// </summary>
public interface IFusedFfnOps
{
    /// <summary>
    /// upGate (R, 2F) = gain ⊙ z·rstd with rstd (R) = 1/sqrt(mean(z², row) + eps) over each whole row of z (R, 2F),
    /// then s (R, F) = up ⊙ silu(gate) from upGate. gain (2F) may be null. upGate may be null: the normalised rows are
    /// then formed one at a time and not stored (<see cref="SwiGluNormBackward"/> recomputes them), which saves a
    /// write of R·2F floats (8 MiB per layer at baby-gpt's size).
    /// </summary>
    void NormSwiGluForward(Tensor z, Tensor? gain, Tensor? upGate, Tensor rstd, Tensor s, float eps);

    /// <summary>
    /// dUpGate (R, 2F) = SwiGLU backward of dS (R, F) at [up | gate] = gain ⊙ z·rstd (recomputed from z and the
    /// forward's rstd, bit for bit what the forward wrote, instead of read back), then the norm backward of that at z
    /// and rstd, in place; dGain (2F) += Σ_rows of the norm's gain gradient when both gain and dGain are given.
    /// </summary>
    void SwiGluNormBackward(Tensor dS, Tensor z, Tensor? gain, Tensor rstd, Tensor dUpGate, Tensor? dGain);
}

/// <summary>Token embedding lookup.</summary>
public interface IEmbeddingOps
{
    /// <summary>y (N, C) = table (V, C)[tokens (N)]; token ids are stored as exact floats.</summary>
    void Forward(Tensor tokens, Tensor table, Tensor y);

    /// <summary>dTable (V, C) += scatter of dY (N, C) by token, in position order (deterministic, no atomics).</summary>
    void Backward(Tensor tokens, Tensor dY, Tensor dTable);
}

/// <summary>Fused softmax cross-entropy.</summary>
public interface ILossOps
{
    /// <summary>
    /// logits (N, V), targets (N). losses (N) gets each row's loss, loss (1) their mean (fixed-order sum),
    /// dLogits (N, V) = (softmax − onehot)·gradScale, overwritten; dLogits may alias logits.
    /// </summary>
    void CrossEntropy(Tensor logits, Tensor targets, Tensor losses, Tensor loss, Tensor dLogits, float gradScale);
}

/// <summary>Elementwise ops over equally long tensors.</summary>
public interface IElementwiseOps
{
    void Fill(Tensor y, float value);
    void Copy(Tensor x, Tensor y);

    /// <summary>y = a + b; y may alias a or b.</summary>
    void Add(Tensor a, Tensor b, Tensor y);

    /// <summary>y = s·x; y may alias x.</summary>
    void Scale(Tensor x, float s, Tensor y);

    /// <summary>y += a·x.</summary>
    void Axpy(float a, Tensor x, Tensor y);
}

/// <summary>Deterministic reductions (fixed partition and order, independent of thread timing).</summary>
public interface IReductionOps
{
    /// <summary>output[index] = Σ x².</summary>
    void SumSquares(Tensor x, Tensor output, int index);

    /// <summary>output[index] = Σ x.</summary>
    void Sum(Tensor x, Tensor output, int index);
}

/// <summary>Hyper-parameters of one AdamW step; the bias corrections 1 − β^t are computed on the host.</summary>
public readonly record struct AdamWStep(
    float Lr, float Beta1, float Beta2, float Eps, float WeightDecay,
    float BiasCorrection1, float BiasCorrection2, float GradClip);

/// <summary>The optimizer update.</summary>
public interface IOptimizerOps
{
    /// <summary>
    /// torch.optim.AdamW over a flat arena: g = grad·scale with scale = min(1, clip/(‖g‖ + 1e-6)) read from
    /// gradSumSquares[0] = ‖g‖² (no clipping when GradClip ≤ 0); p ← p·(1 − lr·wd·mask); m, v updated;
    /// p ← p − lr·(m/bc1)/(sqrt(v/bc2) + eps). All tensors have the same length except gradSumSquares.
    /// </summary>
    void AdamW(in AdamWStep step, Tensor param, Tensor grad, Tensor m, Tensor v, Tensor decayMask, Tensor gradSumSquares);
}

/// <summary>Device-side random numbers from the counter-based generator shared with the host.</summary>
public interface IRandomOps
{
    /// <summary>y[i] = <see cref="Random.Philox.Uniform"/>(seed, stream, i), bit-identical to the host.</summary>
    void FillUniform(Tensor y, ulong seed, ulong stream);
}

/// <summary>The op set a device runs: one implementation per family, replaceable family by family.</summary>
public sealed class OpSet
{
    public required IGemmOps Gemm { get; init; }
    public required INormOps Norm { get; init; }
    public required IRopeOps Rope { get; init; }
    public required IAttentionOps Attention { get; init; }
    public required IActivationOps Activation { get; init; }
    public required IEmbeddingOps Embedding { get; init; }
    public required ILossOps Loss { get; init; }
    public required IElementwiseOps Elementwise { get; init; }
    public required IReductionOps Reduction { get; init; }
    public required IOptimizerOps Optimizer { get; init; }
    public required IRandomOps Random { get; init; }

    /// <summary>Fused ops a device may add (null: the layers compose the separate ops).</summary>
    public IFusedFfnOps? FusedFfn { get; init; }
}
