// The training configuration: an immutable record with a Validate() that names the rule and the fix.
// Every property maps one-to-one to an `sdd train` flag (see the CLI).
using System.Text.Json;

namespace SddIlgpu.Training;

/// <summary>Everything about a training run except the model's shape.</summary>
public sealed record TrainConfig
{
    public int Steps { get; init; } = 1000;
    public int Batch { get; init; } = 8;
    public int GradAccum { get; init; } = 1;
    public double Lr { get; init; } = 1e-3;
    public double MinLrRatio { get; init; } = 0.1;
    public int Warmup { get; init; } = 100;
    public double WeightDecay { get; init; } = 0.1;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.95;
    public double AdamEps { get; init; } = 1e-8;
    public double GradClip { get; init; } = 1.0;
    public bool DecayNormGains { get; init; } = true;
    public ulong Seed { get; init; } = 1337;
    public int EvalEvery { get; init; } = 100;
    public int EvalBatches { get; init; } = 8;
    public int SampleEvery { get; init; }
    public int SampleTokens { get; init; } = 200;
    public double Temperature { get; init; } = 0.8;
    public int TopK { get; init; } = 40;
    public int CheckpointEvery { get; init; }
    public int LogEvery { get; init; } = 1;
    public string Tokenizer { get; init; } = "char";

    /// <summary>Training defaults that suit each model preset on its intended hardware.</summary>
    public static TrainConfig ForPreset(string preset) => preset switch
    {
        "tiny" => new TrainConfig { Batch = 8, Steps = 1000, Lr = 2e-3, Warmup = 50, EvalEvery = 250, EvalBatches = 8, SampleEvery = 500 },
        "shakespeare-cpu" => new TrainConfig { Batch = 12, Steps = 2000, Lr = 1e-3, Warmup = 100, EvalEvery = 250, EvalBatches = 8 },
        "baby-gpt" => new TrainConfig { Batch = 64, Steps = 5000, Lr = 1e-3, Warmup = 100, EvalEvery = 250, EvalBatches = 20 },
        _ => new TrainConfig(),
    };

    /// <summary>Throws <see cref="ArgumentException"/> naming the offending setting and the fix.</summary>
    public void Validate()
    {
        static void Require(bool ok, string message)
        {
            if (!ok)
                throw new ArgumentException(message);
        }
        Require(Steps > 0, $"--steps must be positive; got {Steps}.");
        Require(Batch > 0, $"--batch must be positive; got {Batch}.");
        Require(GradAccum > 0, $"--grad-accum must be positive; got {GradAccum}.");
        Require(Lr > 0 && double.IsFinite(Lr), $"--lr must be a positive number; got {Lr}.");
        Require(MinLrRatio is >= 0 and <= 1, $"--min-lr-ratio must be in [0, 1]; got {MinLrRatio}.");
        Require(Warmup >= 0, $"--warmup must be zero or positive; got {Warmup}.");
        Require(WeightDecay >= 0, $"--weight-decay must be zero or positive; got {WeightDecay}.");
        Require(Beta1 is >= 0 and < 1, $"--beta1 must be in [0, 1); got {Beta1}.");
        Require(Beta2 is >= 0 and < 1, $"--beta2 must be in [0, 1); got {Beta2}.");
        Require(AdamEps > 0, $"--adam-eps must be positive; got {AdamEps}.");
        Require(GradClip >= 0, $"--grad-clip must be zero (off) or positive; got {GradClip}.");
        Require(EvalEvery >= 0 && EvalBatches > 0, $"--eval-every must be ≥ 0 and --eval-batches > 0; got {EvalEvery} and {EvalBatches}.");
        Require(SampleEvery >= 0 && SampleTokens > 0, $"--sample-every must be ≥ 0 and --sample-tokens > 0; got {SampleEvery} and {SampleTokens}.");
        Require(Temperature >= 0 && double.IsFinite(Temperature), $"--temperature must be 0 (greedy) or a positive finite number; got {Temperature}.");
        Require(TopK >= 0, $"--top-k must be zero (off) or positive; got {TopK}.");
        Require(CheckpointEvery >= 0, $"--checkpoint-every must be zero (only at the end) or positive; got {CheckpointEvery}.");
        Require(LogEvery > 0, $"--log-every must be positive; got {LogEvery}.");
        Require(Data.Tokenizers.Kinds.Contains(Tokenizer), $"--tokenizer must be one of {string.Join(", ", Data.Tokenizers.Kinds)}; got '{Tokenizer}'.");
    }

    /// <summary>snake_case keys, as the model configuration (steps, grad_accum, min_lr_ratio, ...).</summary>
    static readonly JsonSerializerOptions Json = new() { WriteIndented = false, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>The PascalCase keys of checkpoints written before the keys became snake_case.</summary>
    static readonly JsonSerializerOptions LegacyJson = new() { WriteIndented = false };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static TrainConfig FromJson(string json) =>
        JsonSerializer.Deserialize<TrainConfig>(json, json.Contains("\"Steps\"", StringComparison.Ordinal) ? LegacyJson : Json)
        ?? throw new InvalidDataException("Empty training configuration.");
}
