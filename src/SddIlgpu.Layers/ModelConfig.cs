// The model's configuration (spec §2): sizes, residual wiring and linear kind, with validation, named
// presets and the JSON form the reference script writes into fixtures (keys d_model, n_layer, ...).
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

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

    /// <summary>The reference script's JSON form (snake_case keys, head_dim included), through source-generated System.Text.Json.</summary>
    public string ToJson() => JsonSerializer.Serialize(new ModelConfigJson
    {
        Vocab = Vocab, DModel = DModel, NLayer = NLayer, NHead = NHead, NKvHead = NKvHead, FfnHidden = FfnHidden, SeqLen = SeqLen,
        Residual = Name(Residual), Linear = Name(Linear), NormEps = NormEps, RopeTheta = RopeTheta, HeadDim = HeadDim,
        InitStd = InitStd > 0 ? InitStd : null,
    }, ModelConfigJsonContext.Default.ModelConfigJson);

    /// <summary>
    /// Parses <see cref="ToJson"/> or a fixture's <c>config</c> and validates it. n_kv_head (default n_head), norm_eps,
    /// rope_theta, head_dim and init_std are optional.
    /// </summary>
    /// <exception cref="ArgumentException">Not JSON, an unknown or missing key, a value of the wrong type or range; the message names the key.</exception>
    public static ModelConfig FromJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        ModelConfigJson o;
        try
        {
            using (JsonDocument.Parse(json))
            {
            }
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"Model config is not valid JSON: {e.Message}", e);
        }
        try
        {
            o = JsonSerializer.Deserialize(json, ModelConfigJsonContext.Default.ModelConfigJson)
                ?? throw new ArgumentException("Model config JSON must be an object; got null.");
        }
        catch (JsonException e)
        {
            var key = e.Path is { Length: > 2 } path && path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : null;
            throw new ArgumentException(key is null
                ? "Model config JSON must be an object of the keys " + string.Join(", ", ModelConfigJson.Keys) + "."
                : $"Model config key '{key}' must be {ModelConfigJson.Expected(key)}.", e);
        }
        if (o.Unknown is { Count: > 0 } unknown)
            throw new ArgumentException($"Unknown model config key '{unknown.Keys.First()}'. Known keys: {string.Join(", ", ModelConfigJson.Keys)}.");
        static T Required<T>(T? value, string key) where T : struct =>
            value ?? throw new ArgumentException($"Model config JSON lacks '{key}'.");
        var config = new ModelConfig(Required(o.Vocab, "vocab"), Required(o.DModel, "d_model"), Required(o.NLayer, "n_layer"),
            Required(o.NHead, "n_head"), o.NKvHead ?? Required(o.NHead, "n_head"), Required(o.FfnHidden, "ffn_hidden"), Required(o.SeqLen, "seq_len"),
            ParseResidual(o.Residual ?? throw new ArgumentException("Model config JSON lacks 'residual'.")),
            ParseLinear(o.Linear ?? throw new ArgumentException("Model config JSON lacks 'linear'.")),
            o.NormEps ?? 1e-5f, o.RopeTheta ?? 10000, o.InitStd ?? 0);
        config.Validate();
        if (o.HeadDim is int headDim && headDim != config.HeadDim)
            throw new ArgumentException($"Model config says head_dim {headDim} but d_model / n_head = {config.HeadDim}.");
        return config;
    }

    /// <summary>One line for logs: the resolved configuration.</summary>
    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"V={Vocab} C={DModel} L={NLayer} NH={NHead} KVH={NKvHead} HS={HeadDim} F={FfnHidden} T={SeqLen} residual={Name(Residual)} linear={Name(Linear)}");
}

/// <summary>The JSON form of <see cref="ModelConfig"/>: every key optional here so a missing one is named by the caller.</summary>
internal sealed record ModelConfigJson
{
    public int? Vocab { get; init; }
    public int? DModel { get; init; }
    public int? NLayer { get; init; }
    public int? NHead { get; init; }
    public int? NKvHead { get; init; }
    public int? FfnHidden { get; init; }
    public int? SeqLen { get; init; }
    public string? Residual { get; init; }
    public string? Linear { get; init; }
    public float? NormEps { get; init; }
    public double? RopeTheta { get; init; }
    public int? HeadDim { get; init; }
    public double? InitStd { get; init; }

    /// <summary>Keys that are none of the above (refused).</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unknown { get; set; }

    public static readonly string[] Keys = ["vocab", "d_model", "n_layer", "n_head", "n_kv_head", "ffn_hidden", "seq_len", "residual", "linear",
        "norm_eps", "rope_theta", "head_dim", "init_std"];

    /// <summary>What a key's value must be, for error messages.</summary>
    public static string Expected(string key) => key switch
    {
        "residual" => "a string: pre, post or deepnorm",
        "linear" => "a string: plain, sdd-code or sdd-paper",
        "norm_eps" or "rope_theta" or "init_std" => "a number",
        _ when Keys.Contains(key) => "an integer between 1 and 2147483647",
        _ => "one of the known keys " + string.Join(", ", Keys),
    };
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ModelConfigJson))]
internal sealed partial class ModelConfigJsonContext : JsonSerializerContext;
