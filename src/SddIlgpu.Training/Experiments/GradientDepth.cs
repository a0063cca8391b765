// Experiment 0 (research/sdd-paper.md §5, paper Eq. 13): the input-gradient norm ratio ||dL/dx0|| / ||dL/dy|| through
// a stack of L layers of width n, no residual, no non-linearity: plain y = x·Wᵀ, where it is ≈ (s·√n)^L, versus SDD
// y = norm(x·Vᵀ) with α = 1, where Eq. 13 predicts ≈ 1 whatever the init std s. Runs the library's Linear and SddLinear.
using System.Globalization;
using System.Text.Json.Nodes;
using SddIlgpu.Layers;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Random;

namespace SddIlgpu.Training.Experiments;

public sealed record GradientDepthOptions
{
    /// <summary>n, the width of every layer.</summary>
    public int Width { get; init; } = 64;

    /// <summary>Rows (tokens) of the input x0 ~ N(0, 1).</summary>
    public int Rows { get; init; } = 32;

    public int[] Depths { get; init; } = [1, 2, 4, 8, 12, 16, 24, 32];

    /// <summary>s·√n of each init: 1/√2.5 (spec σ = 1/√(2.5n)), 0.1/√2.5 (the authors' run scripts), 1 (s = 1/√n).</summary>
    public double[] ScalesTimesSqrtN { get; init; } = [1 / Math.Sqrt(2.5), 0.1 / Math.Sqrt(2.5), 1.0];

    /// <summary>Independent draws of weights, input and upstream gradient; the table shows the geometric mean.</summary>
    public int Trials { get; init; } = 4;

    public ulong Seed { get; init; } = 1337;
}

/// <summary>One cell group: a (scale, depth) pair with the measured and predicted ratios.</summary>
public sealed record GradientDepthRow(double ScaleTimesSqrtN, int Depth, double PlainRatio, double SddRatio, double PredictedPlain, double PredictedSdd);

public sealed record GradientDepthResult(GradientDepthOptions Options, IReadOnlyList<GradientDepthRow> Rows, string Markdown,
    string MarkdownPath, string JsonPath, IReadOnlyList<string> Plots) : IExperimentResult;

public static class GradientDepth
{
    public const string Name = "gradient-depth";

    public static GradientDepthResult Run(ExperimentContext ctx, GradientDepthOptions options)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Width < 2 || options.Rows < 1 || options.Trials < 1 || options.Depths.Length == 0 || options.Depths.Any(d => d < 1))
            throw new ArgumentException("gradient-depth needs width ≥ 2, rows ≥ 1, trials ≥ 1 and positive depths.");
        var rows = new List<GradientDepthRow>();
        using (var stack = new LayerStack(ctx.Device, options.Width, options.Rows, options.Depths.Max()))
        {
            foreach (var sn in options.ScalesTimesSqrtN)
            {
                var logPlain = new double[options.Depths.Length];
                var logSdd = new double[options.Depths.Length];
                for (var trial = 0; trial < options.Trials; trial++)
                {
                    var seed = options.Seed + (ulong)trial;
                    stack.Initialize(sn / Math.Sqrt(options.Width), seed);
                    for (var i = 0; i < options.Depths.Length; i++)
                    {
                        logPlain[i] += stack.LogGradientRatio(options.Depths[i], sdd: false, seed) / options.Trials;
                        logSdd[i] += stack.LogGradientRatio(options.Depths[i], sdd: true, seed) / options.Trials;
                    }
                }
                for (var i = 0; i < options.Depths.Length; i++)
                {
                    var depth = options.Depths[i];
                    rows.Add(new GradientDepthRow(sn, depth, Math.Exp(logPlain[i]), Math.Exp(logSdd[i]), Math.Pow(sn, depth),
                        Math.Pow(1 - 1.0 / options.Width, depth / 2.0)));
                }
                ctx.Say(string.Create(CultureInfo.InvariantCulture,
                    $"  s·√n = {sn:G3}: depth {options.Depths[^1]} plain {Math.Exp(logPlain[^1]):G3}, SDD {Math.Exp(logSdd[^1]):G3}"));
            }
        }
        return Write(ctx.OutDir, options, rows);
    }

    static GradientDepthResult Write(string outDir, GradientDepthOptions o, List<GradientDepthRow> rows)
    {
        var header = new List<string> { "depth L" };
        foreach (var sn in o.ScalesTimesSqrtN)
            header.AddRange([$"plain, s√n={sn:G3}", $"(s√n)^L", $"SDD, s√n={sn:G3}"]);
        var table = ExperimentKit.Table(header, o.Depths.Select(d =>
        {
            var cells = new List<string> { d.ToString(CultureInfo.InvariantCulture) };
            foreach (var r in rows.Where(r => r.Depth == d))
                cells.AddRange([ExperimentKit.F(r.PlainRatio, "G3"), ExperimentKit.F(r.PredictedPlain, "G3"), ExperimentKit.F(r.SddRatio, "G3")]);
            return cells;
        }));
        var md = $"# gradient-depth: ||dL/dx0|| / ||dL/dy|| through L layers (paper Eq. 13)\n\n" +
                 $"Width n = {o.Width}, {o.Rows} rows, no residual, no non-linearity; weights N(0, s²); geometric mean over {o.Trials} draws. " +
                 $"SDD layers are y = norm(x·Vᵀ) with α = 1 (prediction ≈ (1 − 1/n)^(L/2), independent of s).\n\n" + table;
        var json = new JsonObject
        {
            ["experiment"] = Name,
            ["width"] = o.Width, ["rows"] = o.Rows, ["trials"] = o.Trials, ["seed"] = o.Seed,
            ["rows_by_scale_depth"] = new JsonArray([.. rows.Select(r => (JsonNode)new JsonObject
            {
                ["scale_times_sqrt_n"] = r.ScaleTimesSqrtN, ["depth"] = r.Depth,
                ["plain_ratio"] = ExperimentKit.Number(r.PlainRatio), ["sdd_ratio"] = ExperimentKit.Number(r.SddRatio),
                ["plain_predicted"] = ExperimentKit.Number(r.PredictedPlain), ["sdd_predicted"] = ExperimentKit.Number(r.PredictedSdd),
            })]),
        };
        var (mdPath, jsonPath) = ExperimentKit.WriteReport(outDir, Name, md, json);
        var series = new List<PlotSeries>();
        var depths = o.Depths.Select(d => (double)d).ToArray();
        for (var i = 0; i < o.ScalesTimesSqrtN.Length; i++)
        {
            var sn = o.ScalesTimesSqrtN[i];
            var mine = rows.Where(r => r.ScaleTimesSqrtN == sn).ToList();
            series.Add(new PlotSeries($"plain, s√n={sn:G3}", depths, [.. mine.Select(r => r.PlainRatio)], Dashed: true, ColorIndex: i));
            series.Add(new PlotSeries($"SDD, s√n={sn:G3}", depths, [.. mine.Select(r => r.SddRatio)], ColorIndex: i));
        }
        var png = Path.Combine(outDir, Name + ".png");
        ExperimentPlots.Lines(png, $"Input-gradient ratio vs depth (n = {o.Width}): plain (dashed) vs SDD (solid)", "depth L",
            "||dL/dx0|| / ||dL/dy||", series, logY: true);
        return new GradientDepthResult(o, rows, md, mdPath, jsonPath, [png]);
    }

    /// <summary>L layers of width n on one device: plain Linear and SddLinear share the weights V = W.</summary>
    sealed class LayerStack : IDisposable
    {
        readonly Arena arena;
        readonly int n, rows, maxDepth;
        readonly Tensor weights, xs, dA, dB;
        readonly Linear[] plain;
        readonly SddLinear[] sdd;
        readonly float[] host;

        public LayerStack(Device device, int n, int rows, int maxDepth)
        {
            this.n = n;
            this.rows = rows;
            this.maxDepth = maxDepth;
            long rn = (long)rows * n;
            arena = device.Allocate(2L * maxDepth * n * n + 2L * maxDepth * n + (maxDepth + 3) * rn
                                    + maxDepth * SddLinear.ActivationLength(rows, n), "gradient-depth");
            weights = arena.Take((maxDepth, n, n), "W");
            var dWeights = arena.Take((maxDepth, n, n), "dW");
            var alpha = arena.Take((maxDepth, n), "alpha");
            var dAlpha = arena.Take((maxDepth, n), "dAlpha");
            xs = arena.Take((maxDepth + 1, rows, n), "x");
            dA = arena.Take((rows, n), "dA");
            dB = arena.Take((rows, n), "dB");
            device.Ops.Elementwise.Fill(alpha, 1f);
            plain = new Linear[maxDepth];
            sdd = new SddLinear[maxDepth];
            for (var l = 0; l < maxDepth; l++)
            {
                var w = new Parameter($"W{l}", ParamKind.Matrix, weights.Slice((long)l * n * n, (n, n)), dWeights.Slice((long)l * n * n, (n, n)));
                var a = new Parameter($"alpha{l}", ParamKind.Alpha, alpha.Slice((long)l * n, n), dAlpha.Slice((long)l * n, n));
                plain[l] = new Linear(device.Ops, w);
                sdd[l] = new SddLinear(device.Ops, w, a, SddComposition.Paper, 1e-5f, arena, rows, $"sdd{l}");
            }
            host = new float[rn];
        }

        Tensor X(int l) => xs.Slice((long)l * rows * n, (rows, n));

        /// <summary>W_l ~ N(0, std²) and x0 ~ N(0, 1), keyed by the seed.</summary>
        public void Initialize(double std, ulong seed)
        {
            var w = new float[(long)maxDepth * n * n];
            Philox.FillNormal(w, seed, Philox.StreamOf("gradient-depth.W"), 0, std);
            weights.Upload(w);
            Philox.FillNormal(host, seed, Philox.StreamOf("gradient-depth.x0"), 0, 1);
            X(0).Upload(host);
        }

        /// <summary>
        /// log(||dx0|| / ||g||) for a random g at the output of layer L. The gradient is renormalised after every layer
        /// and the log-norms summed: exact (backward is linear in dY) and free of float32 underflow at (0.06)^32.
        /// </summary>
        public double LogGradientRatio(int depth, bool sdd, ulong seed)
        {
            if (sdd)
                for (var l = 0; l < depth; l++)
                    this.sdd[l].Forward(X(l), X(l + 1));
            Philox.FillNormal(host, seed, Philox.StreamOf($"gradient-depth.g{depth}"), 0, 1);
            Normalize(host);
            dA.Upload(host);
            var logRatio = 0.0;
            for (var l = depth - 1; l >= 0; l--)
            {
                if (sdd)
                    this.sdd[l].Backward(dA, X(l), dB);
                else
                    plain[l].Backward(dA, X(l), dB);
                dB.Download(host);
                logRatio += Math.Log(Normalize(host));
                dA.Upload(host);
            }
            return logRatio;
        }

        /// <summary>Scales v to unit norm and returns its norm before (float64 sum).</summary>
        static double Normalize(float[] v)
        {
            double sum = 0;
            foreach (var x in v)
                sum += (double)x * x;
            var norm = Math.Sqrt(sum);
            var inv = norm > 0 ? 1 / norm : 0;
            for (var i = 0; i < v.Length; i++)
                v[i] = (float)(v[i] * inv);
            return norm;
        }

        public void Dispose() => arena.Dispose();
    }
}
