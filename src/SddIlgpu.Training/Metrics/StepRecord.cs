// One JSON line per logged step: what people plot and compare (loss, lr, gradient norms, throughput).
using System.Text.Json;
using System.Text.Json.Serialization;

namespace SddIlgpu.Training.Metrics;

/// <summary>A row of the JSON-lines training log.</summary>
public sealed record StepRecord
{
    [JsonPropertyName("step")] public int Step { get; init; }
    [JsonPropertyName("loss")] public double Loss { get; init; }
    [JsonPropertyName("val_loss")] public double? ValLoss { get; init; }
    [JsonPropertyName("lr")] public double Lr { get; init; }
    [JsonPropertyName("grad_norm")] public double GradNorm { get; init; }
    [JsonPropertyName("tokens_per_s")] public double TokensPerSecond { get; init; }
    [JsonPropertyName("elapsed_s")] public double ElapsedSeconds { get; init; }
    [JsonPropertyName("layer_grad_norms")] public Dictionary<string, double>? LayerGradNorms { get; init; }
    [JsonPropertyName("sample")] public string? Sample { get; init; }

    static readonly JsonSerializerOptions Options = new()
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Options);

    public static StepRecord FromJson(string line) =>
        JsonSerializer.Deserialize<StepRecord>(line, Options) ?? throw new InvalidDataException("Empty log line.");

    /// <summary>Reads a log file; malformed lines are reported with their line number.</summary>
    public static List<StepRecord> ReadLog(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"Training log '{path}' does not exist. Point at the log.jsonl written by 'sdd train --out DIR'.", path);
        var list = new List<StepRecord>();
        var n = 0;
        foreach (var line in File.ReadLines(path))
        {
            n++;
            if (line.Length == 0)
                continue;
            try
            {
                list.Add(FromJson(line));
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{path}:{n}: not a training-log line ({e.Message}).", e);
            }
        }
        return list;
    }
}
