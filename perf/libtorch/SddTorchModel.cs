// The SddIlgpu transformer written with TorchSharp ops (libtorch 2.10), line for line the float32 twin of
// ../shared/reference/sdd_reference.py (forward, attention, ffn, rms_norm, rope) for residual=post,
// linear=sdd-code, the configuration perf/cpu/torch_cpu.py times. Attention is either the reference's composed
// softmax(q·kᵀ/√HS + mask)·v or libtorch's fused scaled_dot_product_attention(is_causal), the same maths.
using SddIlgpu.Layers;
using TorchSharp;
using Parameter = TorchSharp.Modules.Parameter;
using static TorchSharp.torch;

namespace SddIlgpu.LibtorchBench;

/// <summary>How the attention core is computed.</summary>
public enum AttentionKind { Sdpa, Composed }

/// <summary>Parameters (named as spec §4) and the forward pass of a post-norm sdd-code model, float32, CPU.</summary>
public sealed class SddTorchModel : IDisposable
{
    readonly Dictionary<string, Parameter> _params = new(StringComparer.Ordinal);
    readonly Tensor _cos, _sin, _mask;   // (T, HS/2) each, (T, T) bool: true above the diagonal
    bool _disposed;

    public ModelConfig Config { get; }
    public AttentionKind Attention { get; }

    /// <summary>Parameters in the order of <see cref="ParameterShapes"/>.</summary>
    public IReadOnlyList<(string Name, Parameter Value)> Parameters { get; }

    /// <summary>Total number of scalars in the parameters.</summary>
    public long ParameterCount => Parameters.Sum(p => p.Value.numel());

    /// <summary>
    /// A model over <paramref name="values"/>: name → float32 values, row-major, for every name of
    /// <see cref="ParameterShapes"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The configuration is not post-norm sdd-code, or a parameter is missing or sized wrongly.</exception>
    public SddTorchModel(ModelConfig config, AttentionKind attention, Func<string, long[], Tensor> values)
    {
        if (config.Residual != Residual.Post || config.Linear != LinearKind.SddCode)
            throw new ArgumentException("perf/libtorch implements residual=post, linear=sdd-code only (the timed configuration).");
        Config = config;
        Attention = attention;
        var list = new List<(string, Parameter)>();
        foreach (var (name, shape) in ParameterShapes(config))
        {
            using var t = values(name, shape);
            if (!t.shape.SequenceEqual(shape) || t.dtype != ScalarType.Float32)
                throw new ArgumentException($"Parameter '{name}' is {t.dtype} ({string.Join(", ", t.shape)}); expected Float32 ({string.Join(", ", shape)}).");
            var p = new Parameter(t.detach().clone(), requires_grad: true);
            _params[name] = p;
            list.Add((name, p));
        }
        Parameters = list;
        int T = config.SeqLen, half = config.HeadDim / 2;
        // As rope() in the reference: angles in float64, cos/sin cast to float32.
        var cos = new float[T * half];
        var sin = new float[T * half];
        for (var t = 0; t < T; t++)
            for (var i = 0; i < half; i++)
            {
                var angle = t * Math.Pow(config.RopeTheta, -(i * 2.0) / config.HeadDim);
                cos[t * half + i] = (float)Math.Cos(angle);
                sin[t * half + i] = (float)Math.Sin(angle);
            }
        _cos = torch.tensor(cos, [T, half]);
        _sin = torch.tensor(sin, [T, half]);
        _mask = torch.ones(T, T, dtype: ScalarType.Bool).triu(1);
    }

    /// <summary>The reference's random_params: matrices and the embedding N(0, 1/(2.5·C)), gains 1 + 0.2·N(0, 1).</summary>
    public static SddTorchModel Random(ModelConfig config, AttentionKind attention, long seed)
    {
        var gen = new Generator((ulong)seed);
        var std = 1.0 / Math.Sqrt(2.5 * config.DModel);
        return new SddTorchModel(config, attention, (name, shape) => shape.Length == 2
            ? torch.randn(shape, generator: gen).mul_(std)
            : torch.randn(shape, generator: gen).mul_(0.2).add_(1.0));
    }

    /// <summary>Names and shapes of the parameters, in the order of the reference's param_shapes (sdd-code).</summary>
    public static IReadOnlyList<(string Name, long[] Shape)> ParameterShapes(ModelConfig c)
    {
        long C = c.DModel, F = c.FfnHidden, HS = c.HeadDim, NH = c.NHead, KVH = c.NKvHead, V = c.Vocab;
        var list = new List<(string, long[])> { ("embed.weight", [V, C]) };
        for (var i = 0; i < c.NLayer; i++)
        {
            var p = $"blocks.{i}.";
            list.AddRange([
                (p + "attn_norm.weight", [C]),
                (p + "attn.wq.weight", [NH * HS, C]), (p + "attn.wk.weight", [KVH * HS, C]),
                (p + "attn.wv.weight", [KVH * HS, C]), (p + "attn.wo.weight", [C, NH * HS]),
                (p + "attn.q_norm.weight", [HS]), (p + "attn.k_norm.weight", [HS]),
                (p + "attn.ctx_norm.weight", [NH * HS]), (p + "attn.o_norm.weight", [C]),
                (p + "ffn_norm.weight", [C]),
                (p + "ffn.w_up.weight", [F, C]), (p + "ffn.w_gate.weight", [F, C]), (p + "ffn.w_down.weight", [C, F]),
                (p + "ffn.upgate_norm.weight", [2 * F]), (p + "ffn.down_norm.weight", [C]),
            ]);
        }
        list.Add(("final_norm.weight", [C]));
        return list;
    }

    /// <summary>Mean cross-entropy of the logits at <paramref name="tokens"/> (B, T) int64 against <paramref name="targets"/> (B, T) int64.</summary>
    public Tensor Loss(Tensor tokens, Tensor targets)
    {
        var logits = Forward(tokens);
        return nn.functional.cross_entropy(logits.reshape(-1, Config.Vocab), targets.reshape(-1));
    }

    /// <summary>Logits (B, T, V) of <paramref name="tokens"/> (B, T) int64: embedding, L post-norm blocks, final norm, tied head.</summary>
    public Tensor Forward(Tensor tokens)
    {
        long B = tokens.shape[0], T = tokens.shape[1];
        var embed = _params["embed.weight"];
        var x = embed.index_select(0, tokens.reshape(-1)).view(B, T, Config.DModel);
        for (var i = 0; i < Config.NLayer; i++)
        {
            var p = $"blocks.{i}.";
            var h = RmsNorm(x, _params[p + "attn_norm.weight"]);
            x = h + AttentionBlock(h, p);
            h = RmsNorm(x, _params[p + "ffn_norm.weight"]);
            x = h + Ffn(h, p);
        }
        x = RmsNorm(x, _params["final_norm.weight"]);
        return x.matmul(embed.t());
    }

    Tensor RmsNorm(Tensor x, Tensor g) => g * x * torch.rsqrt((x * x).mean([-1], keepdim: true) + Config.NormEps);

    /// <summary>Half-split rotary embedding of <paramref name="x"/> (B, H, T, HS).</summary>
    Tensor Rope(Tensor x)
    {
        var half = Config.HeadDim / 2;
        var x1 = x.narrow(-1, 0, half);
        var x2 = x.narrow(-1, half, half);
        return torch.cat([x1 * _cos - x2 * _sin, x2 * _cos + x1 * _sin], -1);
    }

    Tensor AttentionBlock(Tensor h, string p)
    {
        long B = h.shape[0], T = h.shape[1];
        int NH = Config.NHead, KVH = Config.NKvHead, HS = Config.HeadDim;
        var q = h.matmul(_params[p + "attn.wq.weight"].t()).view(B, T, NH, HS);
        var k = h.matmul(_params[p + "attn.wk.weight"].t()).view(B, T, KVH, HS);
        var v = h.matmul(_params[p + "attn.wv.weight"].t()).view(B, T, KVH, HS);
        q = RmsNorm(q, _params[p + "attn.q_norm.weight"]);
        k = RmsNorm(k, _params[p + "attn.k_norm.weight"]);
        q = Rope(q.transpose(1, 2));
        k = Rope(k.transpose(1, 2));
        v = v.transpose(1, 2);
        if (NH != KVH)
        {
            k = k.repeat_interleave(NH / KVH, dim: 1);
            v = v.repeat_interleave(NH / KVH, dim: 1);
        }
        Tensor ctx;
        if (Attention == AttentionKind.Sdpa)
            ctx = nn.functional.scaled_dot_product_attention(q, k, v, is_casual: true);
        else
        {
            var att = q.matmul(k.transpose(-1, -2)) / Math.Sqrt(HS);
            ctx = att.masked_fill(_mask, float.NegativeInfinity).softmax(-1).matmul(v);
        }
        ctx = RmsNorm(ctx.transpose(1, 2).reshape(B, T, NH * HS), _params[p + "attn.ctx_norm.weight"]);
        var o = ctx.matmul(_params[p + "attn.wo.weight"].t());
        return RmsNorm(o, _params[p + "attn.o_norm.weight"]);
    }

    Tensor Ffn(Tensor h, string p)
    {
        var F = Config.FfnHidden;
        var up = h.matmul(_params[p + "ffn.w_up.weight"].t());
        var gate = h.matmul(_params[p + "ffn.w_gate.weight"].t());
        var ug = RmsNorm(torch.cat([up, gate], -1), _params[p + "ffn.upgate_norm.weight"]);
        var s = ug.narrow(-1, 0, F) * nn.functional.silu(ug.narrow(-1, F, F));
        var f = s.matmul(_params[p + "ffn.w_down.weight"].t());
        return RmsNorm(f, _params[p + "ffn.down_norm.weight"]);
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        foreach (var (_, p) in Parameters)
            p.Dispose();
        _cos.Dispose();
        _sin.Dispose();
        _mask.Dispose();
    }
}
