// The model's parameters and gradients (spec §4): named views into one arena of values and one of
// gradients, in the reference's param_shapes order, and the initialisation of spec §5 from Philox.
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;
using SddIlgpu.Tensors.Random;

namespace SddIlgpu.Layers;

/// <summary>Parameter groups of spec §6. AlphaOut: o_norm, down_norm, wo.alpha, w_down.alpha (start at 1/√(2L)).</summary>
public enum ParamKind { Matrix, Embedding, Gain, Alpha, AlphaOut }

/// <summary>A named parameter: its value and gradient are views into the weights' two arenas.</summary>
public sealed class Parameter
{
    /// <summary>A parameter over existing value and gradient tensors of the same shape (e.g. to use a layer on its own).</summary>
    public Parameter(string name, ParamKind kind, Tensor value, Tensor grad)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(value);
        ArgumentNullException.ThrowIfNull(grad);
        grad.Expect(value.Shape, $"gradient of {name}");
        Name = name;
        Kind = kind;
        Shape = value.Shape;
        Value = value;
        Grad = grad;
    }

    public string Name { get; }
    public ParamKind Kind { get; }
    public Shape Shape { get; }
    public Tensor Value { get; }
    public Tensor Grad { get; }

    /// <summary>The weight's packed copies when its <see cref="ModelWeights"/> keeps them (a Matrix on a device with <see cref="IWeightPackingOps"/>).</summary>
    public PackedWeight? Packed { get; internal set; }

    /// <summary>True for the weight matrix of a linear layer (the per-layer gradient norms report these).</summary>
    public bool IsLinearWeight => Kind == ParamKind.Matrix;

    /// <summary>Whether AdamW decays this parameter (spec §6): matrices yes, the embedding never, gains and α as configured.</summary>
    public bool Decays(bool decayNormGains) => Kind switch
    {
        ParamKind.Matrix => true,
        ParamKind.Embedding => false,
        _ => decayNormGains,
    };

    public override string ToString() => $"{Name} {Shape} {Kind}";
}

/// <summary>All parameters and their gradients, each set in ONE arena, in spec §4 order.</summary>
public sealed class ModelWeights : IDisposable
{
    readonly Arena values, grads;
    readonly Arena? packedArena;
    readonly Dictionary<string, Parameter> byName = [];

    public ModelWeights(Device device, ModelConfig config) : this(device, config, null)
    {
    }

    /// <summary>With <paramref name="ops"/>, layers built on these weights call that op set instead of the device's.</summary>
    internal ModelWeights(Device device, ModelConfig config, OpSet? ops)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Device = device;
        Config = config;
        Ops = ops ?? device.Ops;
        var layout = Layout(config);
        Count = layout.Sum(p => p.Shape.Length);
        values = device.Allocate(Count, "params");
        try
        {
            grads = device.Allocate(Count, "grads");
        }
        catch
        {
            values.Dispose();
            throw;
        }
        var list = new List<Parameter>(layout.Count);
        foreach (var (name, shape, kind) in layout)
        {
            var p = new Parameter(name, kind, values.Take(shape, name), grads.Take(shape, "grad." + name));
            list.Add(p);
            byName.Add(name, p);
        }
        Parameters = list;
        Values = values.All("params");
        Grads = grads.All("grads");
        var packed = new List<PackedWeight>();
        if (Ops.WeightPacking is { } packing && PackedLength(config) is > 0 and var length)
        {
            try
            {
                packedArena = device.Allocate(length, "packed_weights");
            }
            catch
            {
                Dispose();
                throw;
            }
            foreach (var p in list.Where(p => p.Kind == ParamKind.Matrix))
            {
                p.Packed = packing.Create(p.Value, packedArena.Take(checked((int)PackedWeight.Length(p.Shape[0], p.Shape[1])), "packed." + p.Name), p.Name);
                packed.Add(p.Packed);
            }
        }
        Packed = packed;
    }

    /// <summary>
    /// Elements of the packed copies a device with <see cref="IWeightPackingOps"/> keeps for every linear weight matrix
    /// (<see cref="PackedWeight.Length"/> each; twice the matrices when their sizes are multiples of 32).
    /// </summary>
    public static long PackedLength(ModelConfig c) =>
        Layout(c).Where(p => p.Kind == ParamKind.Matrix).Sum(p => PackedWeight.Length(p.Shape[0], p.Shape[1]));

    /// <summary>The packed copies of the linear weight matrices, in layout order (none on a device without packing).</summary>
    public IReadOnlyList<PackedWeight> Packed { get; }

    /// <summary>
    /// Marks every packed copy stale: call after writing <see cref="Values"/> or a parameter's Value directly (the
    /// uploads and <see cref="Initialize"/> here do it). Products then read the weights themselves until AdamW repacks them.
    /// </summary>
    public void InvalidatePacked()
    {
        foreach (var p in Packed)
            p.Invalidate();
    }

    /// <summary>Uploads every value (Count, in layout order) and marks the packed copies stale.</summary>
    public void Upload(ReadOnlySpan<float> all)
    {
        InvalidatePacked();
        Values.Upload(all);
    }

    public Device Device { get; }
    public ModelConfig Config { get; }
    internal OpSet Ops { get; }
    public IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>Total number of scalar parameters.</summary>
    public long Count { get; }

    /// <summary>All values as one flat tensor (Count).</summary>
    public Tensor Values { get; }

    /// <summary>All gradients as one flat tensor (Count).</summary>
    public Tensor Grads { get; }

    public Parameter this[string name] =>
        byName.TryGetValue(name, out var p) ? p
        : throw new KeyNotFoundException($"No parameter '{name}' in a {Config.Describe()} model.");

    public bool Contains(string name) => byName.ContainsKey(name);

    /// <summary>Sets every gradient to zero (one fill).</summary>
    public void ZeroGrad() => Ops.Elementwise.Fill(Grads, 0f);

    /// <summary>(name, shape, kind) in the order of the reference's param_shapes (spec §4).</summary>
    public static IReadOnlyList<(string Name, Shape Shape, ParamKind Kind)> Layout(ModelConfig c)
    {
        ArgumentNullException.ThrowIfNull(c);
        int C = c.DModel, F = c.FfnHidden, HS = c.HeadDim, Q = c.NHead * HS, KV = c.NKvHead * HS;
        var o = new List<(string, Shape, ParamKind)> { ("embed.weight", (c.Vocab, C), ParamKind.Embedding) };
        for (var i = 0; i < c.NLayer; i++)
        {
            var p = $"blocks.{i}.";
            o.Add((p + "attn_norm.weight", C, ParamKind.Gain));
            o.Add((p + "attn.wq.weight", (Q, C), ParamKind.Matrix));
            o.Add((p + "attn.wk.weight", (KV, C), ParamKind.Matrix));
            o.Add((p + "attn.wv.weight", (KV, C), ParamKind.Matrix));
            o.Add((p + "attn.wo.weight", (C, Q), ParamKind.Matrix));
            if (c.Linear == LinearKind.SddCode)
            {
                o.Add((p + "attn.q_norm.weight", HS, ParamKind.Gain));
                o.Add((p + "attn.k_norm.weight", HS, ParamKind.Gain));
                o.Add((p + "attn.ctx_norm.weight", Q, ParamKind.Gain));
                o.Add((p + "attn.o_norm.weight", C, ParamKind.AlphaOut));
            }
            if (c.Linear == LinearKind.SddPaper)
            {
                o.Add((p + "attn.wq.alpha", Q, ParamKind.Alpha));
                o.Add((p + "attn.wk.alpha", KV, ParamKind.Alpha));
                o.Add((p + "attn.wv.alpha", KV, ParamKind.Alpha));
                o.Add((p + "attn.wo.alpha", C, ParamKind.AlphaOut));
            }
            o.Add((p + "ffn_norm.weight", C, ParamKind.Gain));
            o.Add((p + "ffn.w_up.weight", (F, C), ParamKind.Matrix));
            o.Add((p + "ffn.w_gate.weight", (F, C), ParamKind.Matrix));
            o.Add((p + "ffn.w_down.weight", (C, F), ParamKind.Matrix));
            if (c.Linear == LinearKind.SddCode)
            {
                o.Add((p + "ffn.upgate_norm.weight", checked(2 * F), ParamKind.Gain));
                o.Add((p + "ffn.down_norm.weight", C, ParamKind.AlphaOut));
            }
            if (c.Linear == LinearKind.SddPaper)
            {
                o.Add((p + "ffn.w_up.alpha", F, ParamKind.Alpha));
                o.Add((p + "ffn.w_gate.alpha", F, ParamKind.Alpha));
                o.Add((p + "ffn.w_down.alpha", C, ParamKind.AlphaOut));
            }
        }
        o.Add(("final_norm.weight", C, ParamKind.Gain));
        return o;
    }

    /// <summary>
    /// Spec §5, computed on the host and uploaded in one copy: truncated normal (±3σ) keyed by
    /// (seed, Philox.StreamOf(name), index); plain: wo, w_down × 1/√(2L); plain deepnorm: wv, wo, w_up, w_gate,
    /// w_down × (8L)^(−1/4) instead; SDD matrices stay at σ (the norm after them removes their scale);
    /// gains and α 1; AlphaOut 1/√(2L).
    /// </summary>
    public void Initialize(ulong seed)
    {
        var host = new float[Count];
        long offset = 0;
        foreach (var p in Parameters)
        {
            var span = host.AsSpan(checked((int)offset), checked((int)p.Shape.Length));
            var stream = Philox.StreamOf(p.Name);
            switch (p.Kind)
            {
                case ParamKind.Matrix:
                case ParamKind.Embedding:
                    Philox.FillTruncatedNormal(span, seed, stream, Config.EffectiveInitStd * MatrixScale(Config, p.Name));
                    break;
                case ParamKind.AlphaOut:
                    span.Fill((float)(1.0 / Math.Sqrt(2.0 * Config.NLayer)));
                    break;
                default:
                    span.Fill(1f);
                    break;
            }
            offset += p.Shape.Length;
        }
        Upload(host);
    }

    /// <summary>The extra factor on σ for a matrix (spec §5).</summary>
    public static double MatrixScale(ModelConfig c, string name)
    {
        ArgumentNullException.ThrowIfNull(c);
        ArgumentNullException.ThrowIfNull(name);
        if (c.Linear != LinearKind.Plain || !name.StartsWith("blocks.", StringComparison.Ordinal))
            return 1;
        var leaf = name[(name.IndexOf('.', 7) + 1)..];
        if (c.Residual == Residual.DeepNorm)
            return leaf is "attn.wv.weight" or "attn.wo.weight" or "ffn.w_up.weight" or "ffn.w_gate.weight" or "ffn.w_down.weight"
                ? Math.Pow(8.0 * c.NLayer, -0.25) : 1;
        return leaf is "attn.wo.weight" or "ffn.w_down.weight" ? 1.0 / Math.Sqrt(2.0 * c.NLayer) : 1;
    }

    public void Dispose()
    {
        values.Dispose();
        grads.Dispose();
        packedArena?.Dispose();
    }
}
