// The model's configuration (spec §2): sizes, residual wiring and linear kind, with validation, named
// presets and the JSON form the reference script writes into fixtures (keys d_model, n_layer, ...).
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace SddIlgpu.Layers;

/// <summary>How a sub-layer joins the residual stream (spec §3).</summary>
public enum Residual { Pre, Post, DeepNorm }

/// <summary>What the fully-connected layers are: plain xWᵀ, the authors' code (norms with gains), or the paper's α ⊙ norm(xWᵀ).</summary>
public enum LinearKind { Plain, SddCode, SddPaper }

/// <summary>
/// Sizes and choices of a decoder-only transformer: V, C, L, NH, KVH, F, T. InitStd 0 means σ = 1/√(2.5·C).
/// </summary>
public sealed record ModelConfig(int Vocab, int DModel, int NLayer, int NHead, int NKvHead, int FfnHidden, int SeqLen,
    Residual Residual, LinearKind Linear, float NormEps = 1e-5f, double RopeTheta = 10000, double InitStd = 0)
{
    /// <summary>HS = C / NH.</summary>
    public int HeadDim => NHead > 0 ? DModel / NHead : 0;

    /// <summary>σ of the truncated-normal initialisation (spec §5).</summary>
    public double EffectiveInitStd => InitStd > 0 ? InitStd : 1.0 / Math.Sqrt(2.5 * DModel);

    public static readonly string[] PresetNames = ["tiny", "shakespeare-cpu", "baby-gpt"];

    /// <summary>Throws <see cref="ArgumentException"/> naming the broken rule and how to fix it.</summary>
    public void Validate()
    {
        Positive(Vocab, "vocab");
        Positive(DModel, "d_model");
        Positive(NLayer, "n_layer");
        Positive(NHead, "n_head");
        Positive(NKvHead, "n_kv_head");
        Positive(FfnHidden, "ffn_hidden");
        Positive(SeqLen, "seq_len");
        if (DModel % NHead != 0)
            throw new ArgumentException($"d_model ({DModel}) must be divisible by n_head ({NHead}); pick n_head among the divisors of {DModel}.");
        if (NHead % NKvHead != 0)
            throw new ArgumentException($"n_head ({NHead}) must be divisible by n_kv_head ({NKvHead}) for grouped-query attention; pick n_kv_head among the divisors of {NHead}.");
        if (HeadDim % 2 != 0)
            throw new ArgumentException($"head_dim = d_model / n_head = {HeadDim} must be even for rotary embedding; change d_model or n_head.");
        if (!(NormEps > 0) || !(RopeTheta > 0) || InitStd < 0 || double.IsNaN(InitStd))
            throw new ArgumentException($"norm_eps ({NormEps}) and rope_theta ({RopeTheta}) must be positive and init_std ({InitStd}) non-negative (0 = 1/sqrt(2.5*d_model)).");
    }

    static void Positive(int value, string name)
    {
        if (value <= 0)
            throw new ArgumentException($"{name} must be positive; got {value}.");
    }

    /// <summary>8C/3 rounded up to a multiple of 8 (344 for C = 128); computed in 64 bits, refused past int range.</summary>
    public static int DefaultFfnHidden(int dModel)
    {
        var f = (8L * dModel + 23) / 24 * 8;
        return f <= int.MaxValue ? (int)f
            : throw new ArgumentException($"d_model {dModel} is too large: its SwiGLU width 8·d_model/3 = {f} exceeds {int.MaxValue}. Choose a smaller --d-model.");
    }

    /// <summary>A named preset with the given vocabulary and variant.</summary>
    public static ModelConfig Preset(string name, int vocab, Residual residual, LinearKind linear)
    {
        ArgumentNullException.ThrowIfNull(name);
        var (l, nh, c, t) = name.Trim().ToLowerInvariant() switch
        {
            "tiny" => (2, 4, 64, 64),
            "shakespeare-cpu" => (4, 4, 128, 64),
            "baby-gpt" => (6, 6, 384, 256),
            _ => throw new ArgumentException($"Unknown model preset '{name}'. Presets: {string.Join(", ", PresetNames)}."),
        };
        return new ModelConfig(vocab, c, l, nh, nh, DefaultFfnHidden(c), t, residual, linear);
    }

    public static Residual ParseResidual(string s) => s.Trim().ToLowerInvariant() switch
    {
        "pre" => Residual.Pre,
        "post" => Residual.Post,
        "deepnorm" => Residual.DeepNorm,
        _ => throw new ArgumentException($"Unknown residual '{s}'. Use one of: pre, post, deepnorm."),
    };

    public static LinearKind ParseLinear(string s) => s.Trim().ToLowerInvariant() switch
    {
        "plain" => LinearKind.Plain,
        "sdd-code" => LinearKind.SddCode,
        "sdd-paper" => LinearKind.SddPaper,
        _ => throw new ArgumentException($"Unknown linear kind '{s}'. Use one of: plain, sdd-code, sdd-paper."),
    };

    public static string Name(Residual r) => r switch { Residual.Pre => "pre", Residual.Post => "post", _ => "deepnorm" };

    public static string Name(LinearKind l) => l switch { LinearKind.Plain => "plain", LinearKind.SddCode => "sdd-code", _ => "sdd-paper" };

    /// <summary>The reference script's JSON form (snake_case keys, head_dim included).</summary>
    public string ToJson()
    {
        var o = new JsonObject
        {
            ["vocab"] = Vocab, ["d_model"] = DModel, ["n_layer"] = NLayer, ["n_head"] = NHead, ["n_kv_head"] = NKvHead,
            ["ffn_hidden"] = FfnHidden, ["seq_len"] = SeqLen, ["residual"] = Name(Residual), ["linear"] = Name(Linear),
            ["norm_eps"] = NormEps, ["rope_theta"] = RopeTheta, ["head_dim"] = HeadDim,
        };
        if (InitStd > 0)
            o["init_std"] = InitStd;
        return o.ToJsonString();
    }

    /// <summary>Parses <see cref="ToJson"/> or a fixture's <c>config</c>; unknown keys are rejected, missing ones named.</summary>
    public static ModelConfig FromJson(string json)
    {
        JsonObject o;
        try
        {
            o = JsonNode.Parse(json) as JsonObject ?? throw new ArgumentException("Model config JSON must be an object.");
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"Model config is not valid JSON: {e.Message}", e);
        }
        string[] known = ["vocab", "d_model", "n_layer", "n_head", "n_kv_head", "ffn_hidden", "seq_len", "residual", "linear",
            "norm_eps", "rope_theta", "head_dim", "init_std"];
        foreach (var key in o.Select(p => p.Key))
            if (!known.Contains(key))
                throw new ArgumentException($"Unknown model config key '{key}'. Known keys: {string.Join(", ", known)}.");
        int Int(string k) => (int)Get(o, k).GetValue<double>();
        var config = new ModelConfig(Int("vocab"), Int("d_model"), Int("n_layer"), Int("n_head"),
            o.ContainsKey("n_kv_head") ? Int("n_kv_head") : Int("n_head"), Int("ffn_hidden"), Int("seq_len"),
            ParseResidual(Get(o, "residual").GetValue<string>()), ParseLinear(Get(o, "linear").GetValue<string>()),
            o.ContainsKey("norm_eps") ? (float)Get(o, "norm_eps").GetValue<double>() : 1e-5f,
            o.ContainsKey("rope_theta") ? Get(o, "rope_theta").GetValue<double>() : 10000,
            o.ContainsKey("init_std") ? Get(o, "init_std").GetValue<double>() : 0);
        if (o.ContainsKey("head_dim") && Int("head_dim") != config.HeadDim)
            throw new ArgumentException($"Model config says head_dim {Int("head_dim")} but d_model / n_head = {config.HeadDim}.");
        config.Validate();
        return config;
    }

    static JsonNode Get(JsonObject o, string key) =>
        o[key] ?? throw new ArgumentException($"Model config JSON lacks '{key}'.");

    /// <summary>One line for logs: the resolved configuration.</summary>
    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"V={Vocab} C={DModel} L={NLayer} NH={NHead} KVH={NKvHead} HS={HeadDim} F={FfnHidden} T={SeqLen} residual={Name(Residual)} linear={Name(Linear)}");
}
