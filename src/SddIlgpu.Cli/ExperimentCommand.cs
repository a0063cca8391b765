// `sdd experiment NAME`: the small-scale reproductions of the SDD paper (research/sdd-paper.md §5) behind the
// library's Experiments classes. Each experiment is a subcommand whose options map one-to-one to its options
// record (defaults from the record), so an option that does not apply to the chosen experiment is rejected.
using System.CommandLine;
using SddIlgpu.Tensors;
using SddIlgpu.Training.Data;
using SddIlgpu.Training.Experiments;
using static SddIlgpu.Cli.CliOptions;

namespace SddIlgpu.Cli;

public static class ExperimentCommand
{
    public static Command Create()
    {
        var command = new Command("experiment", "reproduce the SDD paper's claims at small scale (tables and plots)")
        {
            GradientDepthCommand(), GradProfileCommand(), RobustnessCommand(), DepthScalingCommand(),
        };
        return command;
    }

    /// <summary>--device, --out, --seed, --quiet: what every experiment takes.</summary>
    sealed class Common
    {
        public readonly Option<string> Device = CliOptions.DeviceOption("cpu");
        public readonly Option<string?> Out = Text("--out", "output folder: NAME.md, NAME.json, PNG plots, runs/ (default: experiments/NAME)", "DIR");
        public readonly Option<ulong> Seed = With("--seed", "seed of weights, data and draws", 1337UL, "S");
        public readonly Option<bool> Quiet = Switch("--quiet", "print only where the outputs are");

        public Command Command(string name, string description, IEnumerable<Option> own)
        {
            var c = new Command(name, description) { Device, Out, Seed, Quiet };
            foreach (var o in own)
                c.Add(o);
            return c;
        }

        /// <summary>Loads the corpus (when the experiment trains), opens the device and runs.</summary>
        public int Run(ParseResult p, string name, bool needsCorpus, Func<ExperimentContext, IExperimentResult> run, string? data = null)
        {
            var deviceName = p.GetValue(Device)!;
            Tensors.Device.Parse(deviceName);
            var quiet = p.GetValue(Quiet);
            var outDir = p.GetValue(Out) ?? Path.Combine("experiments", name);
            var corpus = needsCorpus ? LoadCorpus(data, quiet) : null;
            using var device = Tensors.Device.Open(deviceName);
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
    }

    /// <summary>The options of the experiments that train models: steps, data, width, context, batch, lr.</summary>
    sealed class Training(int steps, int dModel, int seqLen, int batch, double lr)
    {
        public readonly Option<int> Steps = With("--steps", "optimizer steps per run (the token budget is steps × batch × seq-len)", steps, "N").AtLeast(1);
        public readonly Option<string?> Data = Text("--data", "UTF-8 text file, char tokenizer (default: ../shared/data/tinyshakespeare.txt beside the repository, else the built-in fables)", "FILE");
        public readonly Option<int> DModel = With("--d-model", "width C (NH = C/16 heads)", dModel, "C").AtLeast(1);
        public readonly Option<int> SeqLen = With("--seq-len", "context length T", seqLen, "T").AtLeast(1);
        public readonly Option<int> Batch = With("--batch", "sequences per step B", batch, "B").AtLeast(1);
        public readonly Option<double> Lr = With("--lr", "peak learning rate (warmup steps/10, cosine to 0.1x)", lr).Positive();

        public IEnumerable<Option> All => [Steps, Data, DModel, SeqLen, Batch, Lr];
    }

    static Option<string> Variants(ModelVariant[] defaults) =>
        With("--variants", "comma-separated: pre, post, deepnorm, sdd", string.Join(",", defaults.Select(v => v.Key)), "V,..");

    static Option<string> Depths(int[] defaults) =>
        With("--depths", "comma-separated depths", string.Join(",", defaults), "L,..");

    static Command GradientDepthCommand()
    {
        var d = new GradientDepthOptions();
        var common = new Common();
        var width = With("--width", "layer width n", d.Width, "N").AtLeast(2);
        var rows = With("--rows", "rows (tokens) of the input", d.Rows, "N").AtLeast(1);
        var depths = Depths(d.Depths);
        var trials = With("--trials", "independent draws averaged (geometric mean)", d.Trials, "N").AtLeast(1);
        var c = common.Command(GradientDepth.Name, "Eq. 13: input-gradient ratio through L plain vs SDD layers, several init scales", [width, rows, depths, trials]);
        c.SetAction(p =>
        {
            var o = d with
            {
                Width = p.GetValue(width), Rows = p.GetValue(rows), Trials = p.GetValue(trials), Seed = p.GetValue(common.Seed),
                Depths = ExperimentKit.ParseInts(p.GetValue(depths)!, "--depths"),
            };
            return common.Run(p, GradientDepth.Name, false, ctx => GradientDepth.Run(ctx, o));
        });
        return c;
    }

    static Command GradProfileCommand()
    {
        var d = new GradProfileOptions();
        var common = new Common();
        var t = new Training(d.Steps, d.DModel, d.SeqLen, d.Batch, d.Lr);
        var nLayer = With("--n-layer", "depth L", d.NLayer, "L").AtLeast(1);
        var variants = Variants(d.Variants);
        var finalWindow = With("--final-window", "average the final profile over this many last steps", d.FinalWindow, "N").AtLeast(1);
        var c = common.Command(GradProfile.Name, "Fig. 7: per-layer gradient norms of Pre-Norm, Post-Norm, SDD at step 1 and after training",
            [.. t.All, nLayer, variants, finalWindow]);
        c.SetAction(p =>
        {
            var o = d with
            {
                NLayer = p.GetValue(nLayer), DModel = p.GetValue(t.DModel), SeqLen = p.GetValue(t.SeqLen), Batch = p.GetValue(t.Batch),
                Steps = p.GetValue(t.Steps), Lr = p.GetValue(t.Lr), Variants = ModelVariant.ParseList(p.GetValue(variants)!),
                FinalWindow = p.GetValue(finalWindow), Seed = p.GetValue(common.Seed),
            };
            return common.Run(p, GradProfile.Name, true, ctx => GradProfile.Run(ctx, o), p.GetValue(t.Data));
        });
        return c;
    }

    static Command RobustnessCommand()
    {
        var d = new RobustnessOptions();
        var common = new Common();
        var t = new Training(d.Steps, d.DModel, d.SeqLen, d.Batch, d.Lr);
        var nLayer = With("--n-layer", "depth L", d.NLayer, "L").AtLeast(1);
        var warmup = Optional<int>("--warmup", "base warmup steps (default: steps/10)", "N").AtLeast(0);
        var lrMult = With("--lr-mult", "learning-rate multiplier of the lr column", d.LrMultiplier).Positive();
        var initMult = With("--init-mult", "init-std multiplier of the init column", d.InitMultiplier).Positive();
        var variants = Variants(d.Variants);
        var c = common.Command(Robustness.Name, "Table 2: base, lr×5, init×0.1, no warmup for Pre-Norm, Post-Norm, DeepNorm, SDD",
            [.. t.All, nLayer, warmup, lrMult, initMult, variants]);
        c.SetAction(p =>
        {
            var o = d with
            {
                NLayer = p.GetValue(nLayer), DModel = p.GetValue(t.DModel), SeqLen = p.GetValue(t.SeqLen), Batch = p.GetValue(t.Batch),
                Steps = p.GetValue(t.Steps), Lr = p.GetValue(t.Lr), Warmup = p.GetValue(warmup), LrMultiplier = p.GetValue(lrMult),
                InitMultiplier = p.GetValue(initMult), Variants = ModelVariant.ParseList(p.GetValue(variants)!), Seed = p.GetValue(common.Seed),
            };
            return common.Run(p, Robustness.Name, true, ctx => Robustness.Run(ctx, o), p.GetValue(t.Data));
        });
        return c;
    }

    static Command DepthScalingCommand()
    {
        var d = new DepthScalingOptions();
        var common = new Common();
        var t = new Training(d.Steps, d.DModel, d.SeqLen, d.Batch, d.Lr);
        var depths = Depths(d.Depths);
        var variants = Variants(d.Variants);
        var c = common.Command(DepthScaling.Name, "Fig. 10: final loss vs depth at a fixed token budget, Pre-Norm vs SDD", [.. t.All, depths, variants]);
        c.SetAction(p =>
        {
            var o = d with
            {
                Depths = ExperimentKit.ParseInts(p.GetValue(depths)!, "--depths"), DModel = p.GetValue(t.DModel), SeqLen = p.GetValue(t.SeqLen),
                Batch = p.GetValue(t.Batch), Steps = p.GetValue(t.Steps), Lr = p.GetValue(t.Lr),
                Variants = ModelVariant.ParseList(p.GetValue(variants)!), Seed = p.GetValue(common.Seed),
            };
            return common.Run(p, DepthScaling.Name, true, ctx => DepthScaling.Run(ctx, o), p.GetValue(t.Data));
        });
        return c;
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
