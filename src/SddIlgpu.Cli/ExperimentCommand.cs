// `sdd experiment NAME`: the small-scale reproductions of the SDD paper (research/sdd-paper.md §5) behind the
// library's Experiments classes. Each writes NAME.md, NAME.json and PNG plots into --out; flags map one-to-one to
// the experiment's options record, and flags that do not apply to the chosen experiment are rejected.
using SddIlgpu.Tensors;
using SddIlgpu.Training.Data;
using SddIlgpu.Training.Experiments;

namespace SddIlgpu.Cli;

public static class ExperimentCommand
{
    public const string Synopsis = "NAME [--device D] [--steps N] [--out DIR] [flags]";

    static readonly Flag[] Common =
    [
        Flag.Device("cpu"),
        new("out", "output folder (NAME.md, NAME.json, PNG plots, runs/)", Default: "experiments/NAME"),
        new("seed", "seed of weights, data and draws", Default: "1337"),
        new("quiet", "print only where the outputs are", IsBool: true),
    ];

    static readonly Flag[] Training =
    [
        new("steps", "optimizer steps per run (the token budget is steps × batch × seq-len)"),
        new("data", "UTF-8 text file (char tokenizer)", Default: "../shared/data/tinyshakespeare.txt beside the repository, else the built-in fables"),
        new("d-model", "width C (NH = C/16 heads)", Default: "64"),
        new("seq-len", "context length T", Default: "64"),
        new("batch", "sequences per step B", Default: "8"),
        new("lr", "peak learning rate (warmup steps/10, cosine to 0.1x)", Default: "2e-3"),
    ];

    /// <summary>Each experiment: help line and its own flags beside the common ones.</summary>
    static readonly (string Name, string Help, Flag[] Flags)[] Experiments =
    [
        (GradientDepth.Name, "Eq. 13: input-gradient ratio through L plain vs SDD layers, several init scales",
        [
            new("width", "layer width n", Default: "64"),
            new("rows", "rows (tokens) of the input", Default: "32"),
            new("depths", "comma-separated depths", Default: "1,2,4,8,12,16,24,32"),
            new("trials", "independent draws averaged (geometric mean)", Default: "4"),
        ]),
        (GradProfile.Name, "Fig. 7: per-layer gradient norms of Pre-Norm, Post-Norm, SDD at step 1 and after training",
        [
            .. Training,
            new("n-layer", "depth L", Default: "24"),
            new("variants", "comma-separated: pre, post, deepnorm, sdd", Default: "pre,post,sdd"),
            new("final-window", "average the final profile over this many last steps", Default: "10"),
        ]),
        (Robustness.Name, "Table 2: base, lr×5, init×0.1, no warmup for Pre-Norm, Post-Norm, DeepNorm, SDD",
        [
            .. Training,
            new("n-layer", "depth L", Default: "8"),
            new("warmup", "base warmup steps", Default: "steps/10"),
            new("lr-mult", "learning-rate multiplier of the lr column", Default: "5"),
            new("init-mult", "init-std multiplier of the init column", Default: "0.1"),
            new("variants", "comma-separated: pre, post, deepnorm, sdd", Default: "pre,post,deepnorm,sdd"),
        ]),
        (DepthScaling.Name, "Fig. 10: final loss vs depth at a fixed token budget, Pre-Norm vs SDD",
        [
            .. Training,
            new("depths", "comma-separated depths", Default: "2,4,8,16"),
            new("variants", "comma-separated: pre, post, deepnorm, sdd", Default: "pre,sdd"),
        ]),
    ];

    public static string Usage()
    {
        var lines = new List<string> { CliArgs.Usage("experiment", Synopsis, Common), "", "experiments:" };
        foreach (var (name, help, flags) in Experiments)
        {
            lines.Add($"  {name,-16}{help}");
            lines.AddRange(CliArgs.Usage(name, "", flags).Split(Environment.NewLine).Skip(2).Select(l => "    " + l));
        }
        return string.Join(Environment.NewLine, lines);
    }

    public static int Run(IReadOnlyList<string> argv)
    {
        if (argv.Count == 0 || argv[0].StartsWith("--", StringComparison.Ordinal))
            throw new UsageException($"Name an experiment: {string.Join(", ", Experiments.Select(e => e.Name))}.");
        var name = argv[0];
        var spec = Experiments.FirstOrDefault(e => e.Name == name);
        if (spec.Name is null)
            throw new UsageException($"Unknown experiment '{name}'. Experiments: {string.Join(", ", Experiments.Select(e => e.Name))}.");
        var a = CliArgs.Parse(argv.Skip(1).ToList(), [.. Common, .. spec.Flags]);
        var deviceName = a.String("device", "cpu");
        Device.Parse(deviceName);
        var outDir = a.String("out", Path.Combine("experiments", name));
        var quiet = a.Bool("quiet") ?? false;
        var seed = a.ULong("seed") ?? 1337;
        Func<ExperimentContext, IExperimentResult> run = name switch
        {
            GradientDepth.Name => Bind(GradientDepthOptions(a, seed), GradientDepth.Run),
            GradProfile.Name => Bind(GradProfileOptions(a, seed), GradProfile.Run),
            Robustness.Name => Bind(RobustnessOptions(a, seed), Robustness.Run),
            _ => Bind(DepthScalingOptions(a, seed), DepthScaling.Run),
        };
        var corpus = name == GradientDepth.Name ? null : LoadCorpus(a.String("data"), quiet);
        using var device = Device.Open(deviceName);
        var ctx = new ExperimentContext(device, outDir, corpus, quiet ? null : Console.WriteLine);
        if (!quiet)
            Console.WriteLine($"experiment {name} on {device}, output {Path.GetFullPath(outDir)}");
        var result = run(ctx);
        if (!quiet)
            Console.WriteLine(Environment.NewLine + result.Markdown);
        foreach (var f in (string[])[result.MarkdownPath, result.JsonPath, .. result.Plots])
            Console.WriteLine($"wrote {f}");
        return 0;
    }

    /// <summary>Options are parsed (and bad flags rejected) before any data is read or a device opened.</summary>
    static Func<ExperimentContext, IExperimentResult> Bind<TOptions>(TOptions options, Func<ExperimentContext, TOptions, IExperimentResult> run) =>
        ctx => run(ctx, options);

    static GradientDepthOptions GradientDepthOptions(CliArgs a, ulong seed)
    {
        var d = new GradientDepthOptions();
        return d with
        {
            Width = a.Int("width") ?? d.Width,
            Rows = a.Int("rows") ?? d.Rows,
            Depths = a.String("depths") is { } s ? ExperimentKit.ParseInts(s, "--depths") : d.Depths,
            Trials = a.Int("trials") ?? d.Trials,
            Seed = seed,
        };
    }

    static GradProfileOptions GradProfileOptions(CliArgs a, ulong seed)
    {
        var d = new GradProfileOptions();
        return d with
        {
            NLayer = a.Int("n-layer") ?? d.NLayer, DModel = a.Int("d-model") ?? d.DModel, SeqLen = a.Int("seq-len") ?? d.SeqLen,
            Batch = a.Int("batch") ?? d.Batch, Steps = a.Int("steps") ?? d.Steps, Lr = a.Double("lr") ?? d.Lr,
            Variants = a.String("variants") is { } v ? ModelVariant.ParseList(v) : d.Variants,
            FinalWindow = a.Int("final-window") ?? d.FinalWindow, Seed = seed,
        };
    }

    static RobustnessOptions RobustnessOptions(CliArgs a, ulong seed)
    {
        var d = new RobustnessOptions();
        return d with
        {
            NLayer = a.Int("n-layer") ?? d.NLayer, DModel = a.Int("d-model") ?? d.DModel, SeqLen = a.Int("seq-len") ?? d.SeqLen,
            Batch = a.Int("batch") ?? d.Batch, Steps = a.Int("steps") ?? d.Steps, Lr = a.Double("lr") ?? d.Lr,
            Warmup = a.Int("warmup") ?? d.Warmup, LrMultiplier = a.Double("lr-mult") ?? d.LrMultiplier,
            InitMultiplier = a.Double("init-mult") ?? d.InitMultiplier,
            Variants = a.String("variants") is { } v ? ModelVariant.ParseList(v) : d.Variants, Seed = seed,
        };
    }

    static DepthScalingOptions DepthScalingOptions(CliArgs a, ulong seed)
    {
        var d = new DepthScalingOptions();
        return d with
        {
            Depths = a.String("depths") is { } s ? ExperimentKit.ParseInts(s, "--depths") : d.Depths,
            DModel = a.Int("d-model") ?? d.DModel, SeqLen = a.Int("seq-len") ?? d.SeqLen, Batch = a.Int("batch") ?? d.Batch,
            Steps = a.Int("steps") ?? d.Steps, Lr = a.Double("lr") ?? d.Lr,
            Variants = a.String("variants") is { } v ? ModelVariant.ParseList(v) : d.Variants, Seed = seed,
        };
    }

    /// <summary>--data, else tinyshakespeare in ../shared/data beside the repository, else the built-in corpus (with a note).</summary>
    static TextCorpus LoadCorpus(string? data, bool quiet)
    {
        var path = data ?? FindShakespeare();
        if (path is null && !quiet)
            Console.WriteLine("note: ../shared/data/tinyshakespeare.txt not found beside the repository; using the built-in generated fables (pass --data FILE).");
        return TrainCommand.LoadCorpus(path, "char", TextCorpus.DefaultCacheDir, null);
    }

    static string? FindShakespeare()
    {
        if (Environment.GetEnvironmentVariable("SDD_SHARED") is { Length: > 0 } shared && File.Exists(Path.Combine(shared, "data", "tinyshakespeare.txt")))
            return Path.Combine(shared, "data", "tinyshakespeare.txt");
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "SddIlgpu.sln")))
                {
                    var candidate = Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "data", "tinyshakespeare.txt"));
                    if (File.Exists(candidate))
                        return candidate;
                    break;
                }
        return null;
    }
}
