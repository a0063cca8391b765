// Experiment B (research/sdd-paper.md §4.5 Table 2, §5): Pre-Norm, Post-Norm, DeepNorm and SDD (Post-Norm) trained
// under the base settings, learning rate ×5, init std ×0.1 and no warmup; each cell is the final validation loss or
// "−" (did not converge: diverged, or stalled at the context-free unigram loss), laid out as the paper's table.
using System.Globalization;
using System.Text.Json.Nodes;

namespace SddIlgpu.Training.Experiments;

public sealed record RobustnessOptions
{
    public int NLayer { get; init; } = 8;
    public int DModel { get; init; } = 64;
    public int SeqLen { get; init; } = 64;
    public int Batch { get; init; } = 8;
    public int Steps { get; init; } = 300;
    public double Lr { get; init; } = 2e-3;

    /// <summary>Base warmup steps; null = Steps / 10.</summary>
    public int? Warmup { get; init; }

    public double LrMultiplier { get; init; } = 5;
    public double InitMultiplier { get; init; } = 0.1;
    public ModelVariant[] Variants { get; init; } = ModelVariant.All;
    public ulong Seed { get; init; } = 1337;
}

/// <summary>One perturbation of the base settings (the paper's ✓ columns).</summary>
public sealed record Perturbation(string Key, string Title, bool HighLr, bool SmallInit, bool NoWarmup);

/// <summary>One cell: a variant under a perturbation.</summary>
public sealed record RobustnessCell(ModelVariant Variant, Perturbation Setting, RunOutcome Outcome);

public sealed record RobustnessResult(RobustnessOptions Options, IReadOnlyList<RobustnessCell> Cells, string Markdown,
    string MarkdownPath, string JsonPath, IReadOnlyList<string> Plots) : IExperimentResult;

public static class Robustness
{
    public const string Name = "robustness";

    public static Perturbation[] Settings(RobustnessOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        return
        [
            new("base", "base settings", false, false, false),
            new("lr", $"lr ×{o.LrMultiplier:G3}", true, false, false),
            new("init", $"init std ×{o.InitMultiplier:G3}", false, true, false),
            new("nowarmup", "no warmup", false, false, true),
        ];
    }

    public static RobustnessResult Run(ExperimentContext ctx, RobustnessOptions o)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ArgumentNullException.ThrowIfNull(o);
        var corpus = ctx.RequireCorpus(Name);
        if (o.Variants.Length == 0 || o.LrMultiplier <= 0 || o.InitMultiplier <= 0)
            throw new ArgumentException("robustness needs at least one variant and positive lr and init multipliers.");
        var baseTrain = ExperimentKit.BaseTrain(o.Steps, o.Seed) with { Batch = o.Batch, Lr = o.Lr };
        if (o.Warmup is int w)
            baseTrain = baseTrain with { Warmup = w };
        var cells = new List<RobustnessCell>();
        foreach (var v in o.Variants)
        {
            var baseModel = v.Model(corpus.Tokenizer.VocabSize, o.DModel, o.NLayer, o.SeqLen);
            foreach (var s in Settings(o))
            {
                var model = s.SmallInit ? baseModel with { InitStd = baseModel.EffectiveInitStd * o.InitMultiplier } : baseModel;
                var train = baseTrain with
                {
                    Lr = s.HighLr ? o.Lr * o.LrMultiplier : o.Lr,
                    Warmup = s.NoWarmup ? 0 : baseTrain.Warmup,
                };
                cells.Add(new RobustnessCell(v, s, ExperimentKit.Train(ctx, model, train, $"{Name}/{v.Key}-L{o.NLayer}-{s.Key}")));
            }
        }
        return Write(ctx.OutDir, o, baseTrain, corpus, cells);
    }

    static RobustnessResult Write(string outDir, RobustnessOptions o, TrainConfig baseTrain, Data.TextCorpus corpus, List<RobustnessCell> cells)
    {
        var inv = CultureInfo.InvariantCulture;
        var settings = Settings(o);
        static string Mark(bool on) => on ? "✓" : "✗";
        var table = ExperimentKit.Table(["Model", settings[1].Title, settings[2].Title, "w/o warmup", "Loss ↓"],
            cells.Select(c => (IReadOnlyList<string>)
            [
                $"{c.Variant.Name}, L={o.NLayer}", Mark(c.Setting.HighLr), Mark(c.Setting.SmallInit), Mark(c.Setting.NoWarmup),
                c.Outcome.Cell,
            ]));
        var notes = string.Join("\n", cells.Where(c => c.Outcome.Failed).Select(c => $"- {c.Variant.Name}, {c.Setting.Title}: {c.Outcome.Why}."));
        var md = $"# robustness: hyper-parameter perturbations (paper Table 2)\n\n" +
                 string.Create(inv, $"L = {o.NLayer}, C = {o.DModel}, T = {o.SeqLen}, B = {o.Batch}, {o.Steps} steps; base lr {o.Lr:G3}, warmup {baseTrain.Warmup} steps, cosine to 0.1×, clip 1.0, seed {o.Seed}; ") +
                 $"data: {ExperimentKit.DataLine(corpus)}. Loss = validation loss after the last step; " +
                 "\"−\" = did not converge: the loss became NaN/Inf, or the mean of the last 10 training losses was not below the first step's " +
                 string.Create(inv, $"(diverged), or not below the unigram entropy of the data, {ExperimentKit.UnigramEntropy(corpus):F3} nats, the loss of a model that ignores context (stalled).\n\n") +
                 table + (notes.Length > 0 ? "\n" + notes + "\n" : "");
        var json = new JsonObject
        {
            ["experiment"] = Name,
            ["configuration"] = ExperimentKit.Configuration(o.Variants[0].Model(corpus.Tokenizer.VocabSize, o.DModel, o.NLayer, o.SeqLen), baseTrain),
            ["data"] = ExperimentKit.DataLine(corpus),
            ["lr_multiplier"] = o.LrMultiplier, ["init_multiplier"] = o.InitMultiplier,
            ["cells"] = new JsonArray([.. cells.Select(c => (JsonNode)new JsonObject
            {
                ["variant"] = c.Variant.Name, ["setting"] = c.Setting.Key,
                ["lr_x"] = c.Setting.HighLr, ["init_x"] = c.Setting.SmallInit, ["no_warmup"] = c.Setting.NoWarmup,
                ["diverged"] = c.Outcome.Diverged, ["stalled"] = c.Outcome.Stalled, ["why"] = c.Outcome.Why,
                ["val_loss"] = c.Outcome.ValLoss is double v ? ExperimentKit.Number(v) : null,
                ["first_loss"] = ExperimentKit.Number(c.Outcome.FirstLoss), ["final_train_loss"] = ExperimentKit.Number(c.Outcome.FinalLoss),
                ["steps"] = c.Outcome.Steps,
            })]),
        };
        var (mdPath, jsonPath) = ExperimentKit.WriteReport(outDir, Name, md, json);
        var plots = new List<string>();
        foreach (var s in settings)
        {
            var series = cells.Where(c => c.Setting.Key == s.Key).Select((c, i) =>
                new PlotSeries(c.Variant.Name + (c.Outcome.Failed ? " (did not converge)" : ""),
                    [.. c.Outcome.Log.Select(r => (double)r.Step)], MovingAverage([.. c.Outcome.Log.Select(r => r.Loss)], 10),
                    ColorIndex: Array.IndexOf(ModelVariant.All, c.Variant))).ToList();
            var png = Path.Combine(outDir, $"{Name}-{s.Key}.png");
            ExperimentPlots.Lines(png, $"Training loss, {s.Title} (L = {o.NLayer}, C = {o.DModel}; 10-step moving average)", "step",
                "cross-entropy (nats)", series, logY: false);
            plots.Add(png);
        }
        return new RobustnessResult(o, cells, md, mdPath, jsonPath, plots);
    }

    /// <summary>Trailing mean over up to <paramref name="window"/> values (NaN propagates, so a divergence stays visible as a gap).</summary>
    internal static double[] MovingAverage(double[] xs, int window)
    {
        var result = new double[xs.Length];
        for (var i = 0; i < xs.Length; i++)
        {
            var from = Math.Max(0, i - window + 1);
            double sum = 0;
            for (var j = from; j <= i; j++)
                sum += xs[j];
            result[i] = sum / (i - from + 1);
        }
        return result;
    }
}
