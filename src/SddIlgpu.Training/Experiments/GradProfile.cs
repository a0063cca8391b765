// Experiment A (research/sdd-paper.md §4.5 Fig. 7, §5): the L2 norm of each layer's weight gradient, grouped as in the
// paper's four panels (att proj = wq,wk,wv; attn out = wo; ff proj = w_up,w_gate; ff out = w_down), for Pre-Norm,
// Post-Norm and SDD (Post-Norm) models of one depth, at step 1 and averaged over the last steps of a short run.
using System.Globalization;
using System.Text.Json.Nodes;
using SddIlgpu.Training.Metrics;

namespace SddIlgpu.Training.Experiments;

public sealed record GradProfileOptions
{
    public int NLayer { get; init; } = 24;
    public int DModel { get; init; } = 64;
    public int SeqLen { get; init; } = 64;
    public int Batch { get; init; } = 8;
    public int Steps { get; init; } = 200;
    public double Lr { get; init; } = 2e-3;
    public ModelVariant[] Variants { get; init; } = [ModelVariant.PreNorm, ModelVariant.PostNorm, ModelVariant.Sdd];
    public ulong Seed { get; init; } = 1337;

    /// <summary>The "after training" profile is the mean over this many last steps (one step is noisy).</summary>
    public int FinalWindow { get; init; } = 10;
}

/// <summary>Per-layer gradient norms of one projection type of one variant.</summary>
public sealed record GradProfileCurve(string Variant, string Projection, double[] AtStep1, double[] Final)
{
    /// <summary>max/min over layers: 1 is perfectly flat.</summary>
    public static double Spread(double[] xs) => xs.Max() / xs.Min();
}

public sealed record GradProfileResult(GradProfileOptions Options, IReadOnlyList<GradProfileCurve> Curves, IReadOnlyList<RunOutcome> Runs,
    string Markdown, string MarkdownPath, string JsonPath, IReadOnlyList<string> Plots) : IExperimentResult;

public static class GradProfile
{
    public const string Name = "grad-profile";

    /// <summary>The paper's panels: name, file suffix, and the matrices of a block whose gradients are pooled (√Σ‖g‖²).</summary>
    public static readonly (string Title, string File, string[] Leaves)[] Projections =
    [
        ("att proj (wq, wk, wv)", "attn-proj", ["attn.wq.weight", "attn.wk.weight", "attn.wv.weight"]),
        ("attn out (wo)", "attn-out", ["attn.wo.weight"]),
        ("ff proj (w_up, w_gate)", "ff-proj", ["ffn.w_up.weight", "ffn.w_gate.weight"]),
        ("ff out (w_down)", "ff-out", ["ffn.w_down.weight"]),
    ];

    public static GradProfileResult Run(ExperimentContext ctx, GradProfileOptions o)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ArgumentNullException.ThrowIfNull(o);
        var corpus = ctx.RequireCorpus(Name);
        if (o.Variants.Length == 0 || o.Steps < 1 || o.FinalWindow < 1)
            throw new ArgumentException("grad-profile needs at least one variant, one step and a final window of at least one step.");
        var train = ExperimentKit.BaseTrain(o.Steps, o.Seed) with { Batch = o.Batch, Lr = o.Lr };
        var curves = new List<GradProfileCurve>();
        var runs = new List<RunOutcome>();
        foreach (var v in o.Variants)
        {
            var model = v.Model(corpus.Tokenizer.VocabSize, o.DModel, o.NLayer, o.SeqLen);
            var run = ExperimentKit.Train(ctx, model, train, $"{Name}/{v.Key}-L{o.NLayer}");
            runs.Add(run);
            var withNorms = run.Log.Where(r => r.LayerGradNorms is not null).ToList();
            var window = withNorms.Skip(Math.Max(1, withNorms.Count - o.FinalWindow)).ToList();
            foreach (var (title, _, leaves) in Projections)
            {
                var step1 = Layers(withNorms.Take(1), leaves, o.NLayer);
                var final = window.Count > 0 ? Layers(window, leaves, o.NLayer) : [.. Enumerable.Repeat(double.NaN, o.NLayer)];
                curves.Add(new GradProfileCurve(v.Name, title, step1, final));
            }
        }
        return Write(ctx.OutDir, o, train, corpus, curves, runs);
    }

    /// <summary>Per layer: √(Σ over the pooled matrices of ‖g‖²), averaged over the given steps.</summary>
    static double[] Layers(IEnumerable<StepRecord> steps, string[] leaves, int nLayer)
    {
        var list = steps.ToList();
        var result = new double[nLayer];
        for (var i = 0; i < nLayer; i++)
        {
            double sum = 0;
            foreach (var s in list)
                sum += Math.Sqrt(leaves.Sum(leaf => Math.Pow(s.LayerGradNorms![$"blocks.{i}.{leaf}"], 2)));
            result[i] = list.Count > 0 ? sum / list.Count : double.NaN;
        }
        return result;
    }

    static GradProfileResult Write(string outDir, GradProfileOptions o, TrainConfig train, Data.TextCorpus corpus,
        List<GradProfileCurve> curves, List<RunOutcome> runs)
    {
        var inv = CultureInfo.InvariantCulture;
        var table = ExperimentKit.Table(
            ["variant", "projection", "step 1: max/min over layers", "step 1: layer 0 / layer L-1", $"final: max/min", "final: layer 0 / layer L-1", "final loss"],
            curves.Select(c => (IReadOnlyList<string>)
            [
                c.Variant, c.Projection, ExperimentKit.F(GradProfileCurve.Spread(c.AtStep1), "G3"), ExperimentKit.F(c.AtStep1[0] / c.AtStep1[^1], "G3"),
                ExperimentKit.F(GradProfileCurve.Spread(c.Final), "G3"), ExperimentKit.F(c.Final[0] / c.Final[^1], "G3"),
                runs[Array.FindIndex(o.Variants, v => v.Name == c.Variant)].Cell,
            ]));
        var md = $"# grad-profile: per-layer weight-gradient norms (paper Fig. 7)\n\n" +
                 string.Create(inv, $"L = {o.NLayer}, C = {o.DModel}, T = {o.SeqLen}, B = {o.Batch}, {o.Steps} steps, lr {o.Lr:G3} (warmup {train.Warmup}, cosine), seed {o.Seed}; ") +
                 $"data: {ExperimentKit.DataLine(corpus)}. \"final\" = mean of the last {o.FinalWindow} steps. " +
                 "Norms are of the raw (unclipped) gradient of the mean loss. Flatter profiles have max/min nearer 1.\n\n" + table +
                 "\nPer-layer values are in grad-profile.json; plots: " + string.Join(", ", Projections.Select(p => $"{Name}-{p.File}.png")) + ".\n";
        var json = new JsonObject
        {
            ["experiment"] = Name,
            ["configuration"] = ExperimentKit.Configuration(o.Variants[0].Model(corpus.Tokenizer.VocabSize, o.DModel, o.NLayer, o.SeqLen), train),
            ["variants"] = new JsonArray([.. o.Variants.Select(v => (JsonNode)v.Name)]),
            ["data"] = ExperimentKit.DataLine(corpus),
            ["final_window"] = o.FinalWindow,
            ["curves"] = new JsonArray([.. curves.Select(c => (JsonNode)new JsonObject
            {
                ["variant"] = c.Variant, ["projection"] = c.Projection,
                ["step1"] = new JsonArray([.. c.AtStep1.Select(ExperimentKit.Number)]),
                ["final"] = new JsonArray([.. c.Final.Select(ExperimentKit.Number)]),
            })]),
            ["runs"] = new JsonArray([.. runs.Select(r => (JsonNode)new JsonObject
            {
                ["run"] = r.Run, ["first_loss"] = ExperimentKit.Number(r.FirstLoss), ["final_loss"] = ExperimentKit.Number(r.FinalLoss),
                ["val_loss"] = r.ValLoss is double vl ? ExperimentKit.Number(vl) : null, ["diverged"] = r.Diverged, ["stalled"] = r.Stalled, ["why"] = r.Why,
            })]),
        };
        var (mdPath, jsonPath) = ExperimentKit.WriteReport(outDir, Name, md, json);
        var plots = new List<string>();
        var layers = Enumerable.Range(0, o.NLayer).Select(i => (double)i).ToArray();
        foreach (var (title, file, _) in Projections)
        {
            var series = new List<PlotSeries>();
            for (var vi = 0; vi < o.Variants.Length; vi++)
            {
                var c = curves.Single(c => c.Variant == o.Variants[vi].Name && c.Projection == title);
                series.Add(new PlotSeries($"{c.Variant}, step 1", layers, c.AtStep1, Dashed: true, ColorIndex: vi));
                series.Add(new PlotSeries($"{c.Variant}, last {o.FinalWindow} of {o.Steps} steps", layers, c.Final, ColorIndex: vi));
            }
            var png = Path.Combine(outDir, $"{Name}-{file}.png");
            ExperimentPlots.Lines(png, $"{title}: gradient norm per layer (L = {o.NLayer}, C = {o.DModel})", "layer", "||dL/dW||", series, logY: true);
            plots.Add(png);
        }
        return new GradProfileResult(o, curves, runs, md, mdPath, jsonPath, plots);
    }
}
