// Experiment C (research/sdd-paper.md §4.5 Fig. 10, §5): final validation loss against depth L for Pre-Norm and
// SDD (Post-Norm), every model trained on the same token budget (steps × B × T) with the same settings; the paper
// claims SDD's loss keeps falling with depth and its margin over Pre-Norm grows.
using System.Globalization;
using System.Text.Json.Nodes;

namespace SddIlgpu.Training.Experiments;

public sealed record DepthScalingOptions
{
    public int[] Depths { get; init; } = [2, 4, 8, 16];
    public int DModel { get; init; } = 64;
    public int SeqLen { get; init; } = 64;
    public int Batch { get; init; } = 8;
    public int Steps { get; init; } = 300;
    public double Lr { get; init; } = 2e-3;
    public ModelVariant[] Variants { get; init; } = [ModelVariant.PreNorm, ModelVariant.Sdd];
    public ulong Seed { get; init; } = 1337;
}

/// <summary>One trained model: variant, depth, parameter count and outcome.</summary>
public sealed record DepthScalingPoint(ModelVariant Variant, int Depth, long Parameters, RunOutcome Outcome);

public sealed record DepthScalingResult(DepthScalingOptions Options, IReadOnlyList<DepthScalingPoint> Points, string Markdown,
    string MarkdownPath, string JsonPath, IReadOnlyList<string> Plots) : IExperimentResult;

public static class DepthScaling
{
    public const string Name = "depth-scaling";

    public static DepthScalingResult Run(ExperimentContext ctx, DepthScalingOptions o)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ArgumentNullException.ThrowIfNull(o);
        var corpus = ctx.RequireCorpus(Name);
        if (o.Variants.Length == 0 || o.Depths.Length == 0 || o.Depths.Any(d => d < 1))
            throw new ArgumentException("depth-scaling needs at least one variant and positive depths.");
        var train = ExperimentKit.BaseTrain(o.Steps, o.Seed) with { Batch = o.Batch, Lr = o.Lr };
        var points = new List<DepthScalingPoint>();
        foreach (var depth in o.Depths)
            foreach (var v in o.Variants)
            {
                var model = v.Model(corpus.Tokenizer.VocabSize, o.DModel, depth, o.SeqLen);
                var count = Layers.ModelWeights.Layout(model).Sum(p => p.Shape.Length);
                points.Add(new DepthScalingPoint(v, depth, count, ExperimentKit.Train(ctx, model, train, $"{Name}/{v.Key}-L{depth}")));
            }
        return Write(ctx.OutDir, o, train, corpus, points);
    }

    static DepthScalingResult Write(string outDir, DepthScalingOptions o, TrainConfig train, Data.TextCorpus corpus, List<DepthScalingPoint> points)
    {
        var inv = CultureInfo.InvariantCulture;
        var header = new List<string> { "depth L" };
        header.AddRange(o.Variants.Select(v => $"{v.Name} loss (params)"));
        var hasPre = o.Variants.Contains(ModelVariant.PreNorm) && o.Variants.Contains(ModelVariant.Sdd);
        if (hasPre)
            header.Add("SDD − Pre-Norm");
        var table = ExperimentKit.Table(header, o.Depths.Select(d =>
        {
            var row = new List<string> { d.ToString(inv) };
            row.AddRange(o.Variants.Select(v => points.Single(p => p.Depth == d && p.Variant == v) is var p
                ? $"{p.Outcome.Cell} ({p.Parameters:N0})" : ""));
            if (hasPre)
            {
                var pre = points.Single(p => p.Depth == d && p.Variant == ModelVariant.PreNorm).Outcome;
                var sdd = points.Single(p => p.Depth == d && p.Variant == ModelVariant.Sdd).Outcome;
                row.Add(pre.Diverged || sdd.Diverged ? "—" : ExperimentKit.F(sdd.ReportedLoss - pre.ReportedLoss, "+0.0000;−0.0000"));
            }
            return row;
        }));
        var tokens = (long)o.Steps * o.Batch * o.SeqLen;
        var md = $"# depth-scaling: final loss vs depth at a fixed token budget (paper Fig. 10)\n\n" +
                 string.Create(inv, $"C = {o.DModel}, T = {o.SeqLen}, B = {o.Batch}, {o.Steps} steps = {tokens:N0} tokens per model; lr {o.Lr:G3} (warmup {train.Warmup}, cosine), seed {o.Seed}; ") +
                 $"data: {ExperimentKit.DataLine(corpus)}. Loss = validation loss after the last step.\n\n" + table;
        var json = new JsonObject
        {
            ["experiment"] = Name,
            ["configuration"] = ExperimentKit.Configuration(o.Variants[0].Model(corpus.Tokenizer.VocabSize, o.DModel, o.Depths[0], o.SeqLen), train),
            ["data"] = ExperimentKit.DataLine(corpus),
            ["tokens_per_model"] = tokens,
            ["points"] = new JsonArray([.. points.Select(p => (JsonNode)new JsonObject
            {
                ["variant"] = p.Variant.Name, ["depth"] = p.Depth, ["parameters"] = p.Parameters, ["diverged"] = p.Outcome.Diverged, ["stalled"] = p.Outcome.Stalled,
                ["why"] = p.Outcome.Why, ["val_loss"] = p.Outcome.ValLoss is double v ? ExperimentKit.Number(v) : null,
                ["final_train_loss"] = ExperimentKit.Number(p.Outcome.FinalLoss), ["seconds_per_step"] = p.Outcome.SecondsPerStep,
            })]),
        };
        var (mdPath, jsonPath) = ExperimentKit.WriteReport(outDir, Name, md, json);
        var series = o.Variants.Select(v => new PlotSeries(v.Name, [.. o.Depths.Select(d => (double)d)],
            [.. o.Depths.Select(d => points.Single(p => p.Depth == d && p.Variant == v).Outcome is var r && !r.Diverged ? r.ReportedLoss : double.NaN)],
            ColorIndex: Array.IndexOf(ModelVariant.All, v))).ToList();
        var png = Path.Combine(outDir, Name + ".png");
        ExperimentPlots.Lines(png, string.Create(inv, $"Validation loss vs depth at {tokens:N0} tokens (C = {o.DModel})"), "depth L",
            "validation loss (nats)", series, logY: false);
        return new DepthScalingResult(o, points, md, mdPath, jsonPath, [png]);
    }
}
