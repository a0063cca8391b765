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

/// <summary>
/// A linear weight W (Out, In) together with copies of it in the panel orders a host GEMM streams for y = x·Wᵀ and
/// for dX = dY·W (issue 14): a device that has <see cref="IWeightPackingOps"/> refreshes them in the AdamW pass that
/// writes W, so the step's products skip packing W (two ~43 MB passes a step for baby-gpt). The copies hold W's
/// values only while <see cref="Current"/> is true; whoever writes W by other means calls <see cref="Invalidate"/>
/// (ModelWeights does for Initialize and its uploads). Products on a weight that is not current read W itself.
/// </summary>
public sealed class PackedWeight
{
    internal PackedWeight(Tensor weight, Tensor storage, string name)
    {
        Weight = weight;
        Storage = storage;
        Name = name;
    }

    /// <summary>W (Out, In), row-major as PyTorch stores a Linear's weight.</summary>
    public Tensor Weight { get; }

    /// <summary>The copies (<see cref="Length"/> elements): the x·Wᵀ order, then the dY·W order.</summary>
    internal Tensor Storage { get; }

    public string Name { get; }

    public int Out => Weight.Shape[0];

    public int In => Weight.Shape[1];

    /// <summary>Whether the copies equal W: set by a pack or the fused AdamW, cleared by <see cref="Invalidate"/>.</summary>
    public bool Current { get; internal set; }

    /// <summary>Marks the copies stale after W was written other than by the device's pack or fused AdamW.</summary>
    public void Invalidate() => Current = false;

    /// <summary>Widest panel any host micro-kernel packs (AVX-512: 32 columns); the copies are sized for it.</summary>
    public const int MaxPanel = 32;

    /// <summary>
    /// Elements the copies of an (Out, In) weight take: each order padded to whole <see cref="MaxPanel"/>-wide panels,
    /// RoundUp(Out, 32)·In + RoundUp(In, 32)·Out.
    /// </summary>
    public static long Length(int outFeatures, int inFeatures) =>
        checked((long)RoundUp(outFeatures) * inFeatures + (long)RoundUp(inFeatures) * outFeatures);

    static int RoundUp(int n) => (n + MaxPanel - 1) / MaxPanel * MaxPanel;
}

/// <summary>
/// Optional (the managed `cpu` device has it): linear weights kept packed for the GEMM, refreshed by AdamW in the
/// same pass that updates them (issue 14). Every product gives the bits <see cref="IGemmOps.Gemm"/> gives on W itself,
/// and the fused AdamW the bits <see cref="IOptimizerOps.AdamW"/> gives.
/// </summary>
public interface IWeightPackingOps
{
    /// <summary>
    /// A packed weight for <paramref name="weight"/> (Out, In) whose copies live in <paramref name="storage"/>
    /// (<see cref="PackedWeight.Length"/> elements), not yet current.
    /// </summary>
    /// <exception cref="ArgumentException">weight is not 2-D or storage has the wrong length.</exception>
    PackedWeight Create(Tensor weight, Tensor storage, string name);

    /// <summary>Refreshes the copies from W; the weight is then current.</summary>
    void Pack(PackedWeight weight);

    /// <summary>
    /// <see cref="IOptimizerOps.AdamW"/> over the flat arena, the same bits, that also refreshes each of
    /// <paramref name="packed"/> (each a view inside <paramref name="param"/>) from its updated rows while they are in cache.
    /// </summary>
    void AdamW(in AdamWStep step, Tensor param, Tensor grad, Tensor m, Tensor v, Tensor decayMask, Tensor gradSumSquares,
        IReadOnlyList<PackedWeight> packed);

    /// <summary>y (R, Out) = x (R, In)·Wᵀ through layout <paramref name="ly"/>, from the current copies.</summary>
    /// <exception cref="InvalidOperationException">The weight is not current.</exception>
    void Forward(Tensor x, PackedWeight weight, Tensor y, in MatrixLayout ly);

    /// <summary>dX (R, In) = dY (R, Out, through <paramref name="ldY"/>)·W, overwritten or added, from the current copies.</summary>
    /// <exception cref="InvalidOperationException">The weight is not current.</exception>
    void BackwardInput(Tensor dY, in MatrixLayout ldY, PackedWeight weight, Tensor dX, bool accumulate);
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

    /// <summary>Packed linear weights a device may keep (null: every product reads W itself).</summary>
    public IWeightPackingOps? WeightPacking { get; init; }
}
