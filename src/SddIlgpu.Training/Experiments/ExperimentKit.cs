// Shared machinery of the small-scale reproductions of the SDD paper (research/sdd-paper.md §5): the model
// variants the paper compares (Pre-Norm, Post-Norm, DeepNorm baselines; SDD = Post-Norm + sdd-code), one seeded
// training run with the divergence rule of Table 2, and the markdown + JSON outputs, each written atomically.
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using SddIlgpu.Layers;
using SddIlgpu.Tensors;
using SddIlgpu.Training.Data;

namespace SddIlgpu.Training.Experiments;

/// <summary>A model family of the paper: how sub-layers join the residual stream and what the linear layers are.</summary>
public sealed record ModelVariant(string Key, string Name, Residual Residual, LinearKind Linear)
{
    public static readonly ModelVariant PreNorm = new("pre", "Pre-Norm", Residual.Pre, LinearKind.Plain);
    public static readonly ModelVariant PostNorm = new("post", "Post-Norm", Residual.Post, LinearKind.Plain);
    public static readonly ModelVariant DeepNorm = new("deepnorm", "DeepNorm", Residual.DeepNorm, LinearKind.Plain);
    public static readonly ModelVariant Sdd = new("sdd", "SDD (Post-Norm)", Residual.Post, LinearKind.SddCode);

    public static readonly ModelVariant[] All = [PreNorm, PostNorm, DeepNorm, Sdd];

    /// <summary>A comma-separated list of keys (pre, post, deepnorm, sdd).</summary>
    public static ModelVariant[] ParseList(string list)
    {
        ArgumentNullException.ThrowIfNull(list);
        var keys = list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (keys.Length == 0)
            throw new ArgumentException("The variant list is empty. Use a comma-separated list of: pre, post, deepnorm, sdd.");
        return [.. keys.Select(k => All.FirstOrDefault(v => string.Equals(v.Key, k, StringComparison.OrdinalIgnoreCase))
            ?? throw new ArgumentException($"Unknown variant '{k}'. Use a comma-separated list of: pre, post, deepnorm, sdd."))];
    }

    /// <summary>A model of this variant: width C, L blocks, NH = C/16 heads (HS 16), F = 8C/3, context T.</summary>
    public ModelConfig Model(int vocab, int dModel, int nLayer, int seqLen, double initStd = 0)
    {
        var heads = Math.Max(1, dModel / 16);
        var c = new ModelConfig(vocab, dModel, nLayer, heads, heads, ModelConfig.DefaultFfnHidden(dModel), seqLen, Residual, Linear, InitStd: initStd);
        c.Validate();
        return c;
    }
}

/// <summary>Where an experiment runs and writes: the device, the output folder, the corpus (training experiments), a log sink.</summary>
public sealed record ExperimentContext(Device Device, string OutDir, TextCorpus? Corpus = null, Action<string>? Log = null)
{
    internal TextCorpus RequireCorpus(string experiment) =>
        Corpus ?? throw new ArgumentException($"Experiment '{experiment}' trains models and needs a corpus.");

    internal void Say(string line) => Log?.Invoke(line);
}

/// <summary>What every experiment produced: its markdown report and the files written into the output folder.</summary>
public interface IExperimentResult
{
    string Markdown { get; }
    string MarkdownPath { get; }
    string JsonPath { get; }
    IReadOnlyList<string> Plots { get; }
}

/// <summary>The outcome of one training run: the loss curve and the verdict of the Table 2 rule.</summary>
public sealed record RunOutcome(string Run, double FirstLoss, double FinalLoss, double? ValLoss, bool Diverged, bool Stalled, string? Why,
    int Steps, double SecondsPerStep, IReadOnlyList<Metrics.StepRecord> Log)
{
    /// <summary>Did not converge in the paper's sense ("−" in Table 2): diverged or stalled.</summary>
    public bool Failed => Diverged || Stalled;

    /// <summary>The loss a table shows: validation loss at the end, or the smoothed training loss when there is none.</summary>
    public double ReportedLoss => ValLoss ?? FinalLoss;

    /// <summary>A table cell: the loss, or "−" with the reason.</summary>
    public string Cell => Diverged ? "− (diverged)"
        : Stalled ? $"− (stalled, {ExperimentKit.F(ReportedLoss, "F2")})"
        : ExperimentKit.F(ReportedLoss);
}

public static class ExperimentKit
{
    /// <summary>Base training settings of every training experiment (overridden per experiment and by flags).</summary>
    public static TrainConfig BaseTrain(int steps, ulong seed) => new()
    {
        Steps = steps, Batch = 8, Lr = 2e-3, Warmup = Math.Max(1, steps / 10), EvalEvery = 0, EvalBatches = 4, LogEvery = 1,
        CheckpointEvery = 0, Seed = seed,
    };

    /// <summary>
    /// Trains one seeded model in OUT/runs/NAME (log.jsonl kept, checkpoint removed) and applies the paper's "did not
    /// converge" rule: diverged when the loss becomes NaN/Inf or the final loss (mean of the last 10 steps) is not below
    /// the first step's; stalled when that final loss is not below the corpus's unigram entropy, the loss of a model that
    /// ignores its context (a collapse the first rule misses because the first loss is far higher).
    /// </summary>
    public static RunOutcome Train(ExperimentContext ctx, ModelConfig model, TrainConfig train, string runName)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        var corpus = ctx.RequireCorpus(runName);
        var dir = Path.Combine(ctx.OutDir, "runs", runName);
        TrainResult r;
        using (var t = Trainer.Create(ctx.Device, model, train, corpus, dir, new TrainerOptions { WritePlot = false, Overwrite = true }))
            r = t.Run();
        if (r.CheckpointPath is { } checkpoint)
            File.Delete(checkpoint);
        var losses = r.Log.Select(s => s.Loss).ToList();
        var first = losses.Count > 0 ? losses[0] : double.NaN;
        var tail = losses.Skip(Math.Max(0, losses.Count - 10)).ToList();
        var final = tail.Count > 0 ? tail.Average() : double.NaN;
        string? why = null;
        var inv = CultureInfo.InvariantCulture;
        var diverged = r.Diverged || !double.IsFinite(final) || !(final < first);
        if (r.Diverged || !double.IsFinite(final))
            why = $"diverged: loss became {r.FinalLoss.ToString("G4", inv)} at step {r.Steps}";
        else if (!(final < first))
            why = string.Create(inv, $"diverged: final loss {final:F3} not below the first step's {first:F3}");
        var stalled = !diverged && !(final < UnigramEntropy(corpus));
        if (stalled)
            why = string.Create(inv, $"stalled: final loss {final:F3} not below the unigram entropy {UnigramEntropy(corpus):F3}");
        var outcome = new RunOutcome(runName, first, final, diverged ? null : r.ValLoss, diverged, stalled, why, r.Steps, r.SecondsPerStep, r.Log);
        ctx.Say(string.Create(inv,
            $"  {runName,-40} {(why is null ? $"loss {outcome.ReportedLoss:F4}" : why)}  ({r.Steps} steps, {r.SecondsPerStep * 1000:F0} ms/step)"));
        return outcome;
    }

    /// <summary>Entropy (nats) of the training tokens' frequencies: the best loss without context.</summary>
    public static double UnigramEntropy(TextCorpus corpus)
    {
        ArgumentNullException.ThrowIfNull(corpus);
        var counts = new long[corpus.Tokenizer.VocabSize];
        foreach (var t in corpus.Train)
            counts[t]++;
        double n = corpus.Train.Count, h = 0;
        foreach (var c in counts.Where(c => c > 0))
            h -= c / n * Math.Log(c / n);
        return h;
    }

    /// <summary>Writes NAME.md and NAME.json (indented, built as a JSON DOM: no reflection) into the output folder (atomically) and returns their paths.</summary>
    public static (string Markdown, string Json) WriteReport(string outDir, string name, string markdown, JsonNode json)
    {
        Directory.CreateDirectory(outDir);
        var md = Path.Combine(outDir, name + ".md");
        var js = Path.Combine(outDir, name + ".json");
        AtomicFile.WriteAllText(md, markdown);
        AtomicFile.Write(js, stream =>
        {
            using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
                json.WriteTo(writer);
            stream.WriteByte((byte)'\n');
        });
        return (md, js);
    }

    /// <summary>A JSON number, or null for NaN/Inf (JSON has no such numbers).</summary>
    public static JsonNode? Number(double x) => double.IsFinite(x) ? JsonValue.Create(x) : null;

    /// <summary>The run's configuration as JSON objects (model and training).</summary>
    public static JsonObject Configuration(ModelConfig model, TrainConfig train) => new()
    {
        ["model"] = JsonNode.Parse(model.ToJson()),
        ["train"] = JsonNode.Parse(train.ToJson()),
    };

    /// <summary>A markdown table from a header and rows.</summary>
    public static string Table(IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows)
    {
        var lines = new List<string>
        {
            "| " + string.Join(" | ", header) + " |",
            "|" + string.Concat(header.Select(_ => "---|")),
        };
        lines.AddRange(rows.Select(r => "| " + string.Join(" | ", r) + " |"));
        return string.Join("\n", lines) + "\n";
    }

    /// <summary>Invariant formatting: F4 for losses, G3 for ratios.</summary>
    public static string F(double x, string format = "F4") =>
        double.IsFinite(x) ? x.ToString(format, CultureInfo.InvariantCulture) : x.ToString(CultureInfo.InvariantCulture);

    /// <summary>Parses "2,4,8" into positive integers.</summary>
    public static int[] ParseInts(string list, string what)
    {
        ArgumentNullException.ThrowIfNull(list);
        var parts = list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var values = new int[parts.Length];
        for (var i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out values[i]) || values[i] <= 0)
                throw new ArgumentException($"{what} must be a comma-separated list of positive whole numbers; got '{list}'.");
        if (values.Length == 0)
            throw new ArgumentException($"{what} is empty; give a comma-separated list such as 2,4,8.");
        return values;
    }

    /// <summary>One line describing where the corpus came from, for the reports.</summary>
    public static string DataLine(TextCorpus corpus)
    {
        ArgumentNullException.ThrowIfNull(corpus);
        var source = corpus.Source == GeneratedCorpus.Name ? corpus.Source : Path.GetFileName(corpus.Source);
        return $"{source}, {corpus.Tokenizer.Kind} tokenizer (vocab {corpus.Tokenizer.VocabSize}), {corpus.Train.Count:N0} training tokens";
    }
}
