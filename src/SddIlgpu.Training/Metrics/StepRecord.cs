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

    /// <summary>One line of JSON (nulls left out, non-finite numbers as "NaN" / "Infinity"), through source-generated System.Text.Json.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, StepRecordJsonContext.Default.StepRecord);

    /// <summary>Parses one log line.</summary>
    /// <exception cref="JsonException">The line is not a log record.</exception>
    public static StepRecord FromJson(string line) =>
        JsonSerializer.Deserialize(line, StepRecordJsonContext.Default.StepRecord) ?? throw new JsonException("The line is null, not a log record.");

    /// <summary>Reads a log file; malformed lines are reported with their line number.</summary>
    /// <exception cref="InvalidDataException">A line is not a log record.</exception>
    public static List<StepRecord> ReadLog(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"Training log '{path}' does not exist. Point at the log.jsonl written by 'sdd train --out DIR'.", path);
        return ReadLog(File.ReadLines(path), path);
    }

    /// <summary>Parses log lines (blank lines skipped); <paramref name="source"/> names them in errors.</summary>
    internal static List<StepRecord> ReadLog(IEnumerable<string> lines, string source)
    {
        var list = new List<StepRecord>();
        var n = 0;
        foreach (var line in lines)
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
                throw new InvalidDataException($"{source}:{n}: not a training-log line ({e.Message.ReplaceLineEndings(" ")}).", e);
            }
        }
        return list;
    }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(StepRecord))]
internal sealed partial class StepRecordJsonContext : JsonSerializerContext;
