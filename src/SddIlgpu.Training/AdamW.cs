// AdamW as torch.optim.AdamW with global-norm clipping (spec §6): ‖g‖² by one deterministic reduction over
// the flat gradient arena, then one launch over the flat parameter arena. Decay per parameter group comes
// from a mask built once (matrix 1, embedding 0, gains and α 1 when DecayNormGains).
using SddIlgpu.Layers;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Training;

/// <summary>Hyper-parameters of AdamW (defaults of spec §6). GradClip ≤ 0 disables clipping.</summary>
public sealed record AdamWConfig(float Lr = 1e-3f, float WeightDecay = 0.1f, float Beta1 = 0.9f, float Beta2 = 0.95f,
    float Eps = 1e-8f, float GradClip = 1f, bool DecayNormGains = true);

/// <summary>The optimizer state (m, v, decay mask) in one arena beside the weights.</summary>
public sealed class AdamW : IDisposable
{
    readonly ModelWeights weights;
    readonly Arena state;
    readonly OpSet ops;

    public AdamW(ModelWeights weights, AdamWConfig config)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(config);
        if (!(config.Beta1 is >= 0 and < 1) || !(config.Beta2 is >= 0 and < 1) || !(config.Eps > 0) || config.WeightDecay < 0)
            throw new ArgumentException($"AdamW needs 0 ≤ β1, β2 < 1, eps > 0 and weight decay ≥ 0; got {config}.");
        this.weights = weights;
        ops = weights.Ops;
        Config = config;
        var count = weights.Count;
        state = weights.Device.Allocate(StateLength(count), "adamw");
        M = state.Take((int)count, "adamw.m");
        V = state.Take((int)count, "adamw.v");
        DecayMask = state.Take((int)count, "adamw.decay_mask");
        GradNormSquared = state.Take(1, "adamw.grad_norm_sq");
        var mask = new float[count];
        foreach (var p in weights.Parameters)
            mask.AsSpan((int)p.Value.Offset, (int)p.Shape.Length).Fill(p.Decays(config.DecayNormGains) ? 1f : 0f);
        DecayMask.Upload(mask);
    }

    public AdamWConfig Config { get; }

    /// <summary>Elements of the state arena for <paramref name="parameters"/> parameters: m, v, the decay mask and ‖g‖².</summary>
    public static long StateLength(long parameters) => checked(3 * parameters + 1);

    /// <summary>Steps taken so far (t of the bias corrections).</summary>
    public int StepCount { get; private set; }

    /// <summary>First moment (Count), laid out like the weights.</summary>
    public Tensor M { get; }

    /// <summary>Second moment (Count).</summary>
    public Tensor V { get; }

    /// <summary>1 where weight decay applies, else 0 (Count).</summary>
    public Tensor DecayMask { get; }

    /// <summary>(1) ‖g‖² of the gradients the last step used (before clipping).</summary>
    public Tensor GradNormSquared { get; }

    /// <summary>One update with learning rate <paramref name="lr"/> from the gradients in the weights' Grads.</summary>
    public void Step(float lr)
    {
        StepCount++;
        ops.Reduction.SumSquares(weights.Grads, GradNormSquared, 0);
        var bc1 = (float)(1.0 - Math.Pow(Config.Beta1, StepCount));
        var bc2 = (float)(1.0 - Math.Pow(Config.Beta2, StepCount));
        var step = new AdamWStep(lr, Config.Beta1, Config.Beta2, Config.Eps, Config.WeightDecay, bc1, bc2, Config.GradClip);
        if (ops.WeightPacking is { } packing && weights.Packed.Count > 0)
            packing.AdamW(step, weights.Values, weights.Grads, M, V, DecayMask, GradNormSquared, weights.Packed); // and repacks W
        else
            ops.Optimizer.AdamW(step, weights.Values, weights.Grads, M, V, DecayMask, GradNormSquared);
    }

    /// <summary>Restores the step count (with M and V uploaded by the caller) when resuming from a checkpoint.</summary>
    public void Restore(int stepCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(stepCount);
        StepCount = stepCount;
    }

    public void Dispose() => state.Dispose();
}
