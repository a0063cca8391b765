// libtorch 2.10 (TorchSharp-cpu 0.107) anchor for the CPU comparison of issue 14. Run through run.sh (it
// supplies the libstdc++ that libtorch needs on Debian 12 and builds this project), e.g.
//   perf/libtorch/run.sh step baby-gpt 4 [STEPS=30] [WARMUP=5] [--attention sdpa|composed]
//   perf/libtorch/run.sh verify FILE [--attention sdpa|composed]   (FILE from perf/cpu/torch_cpu.py --export)
//   perf/libtorch/run.sh attention [B T NH HS] [--iters 50] [--warmup 5]
//   perf/libtorch/run.sh gemm [MxNxK ...] [--samples 15]
// Every mode accepts --threads N (default 2). Floats are float32, the device is the CPU.
using System.Globalization;
using SddIlgpu.LibtorchBench;
using static TorchSharp.torch;

const string Usage = "usage: run.sh step PRESET BATCH [STEPS] [WARMUP] | verify FILE | attention [B T NH HS] | gemm [MxNxK ...]" +
    " [--attention sdpa|composed] [--threads N] [--iters N] [--warmup N] [--samples N]";
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;   // "1.5 ms", whatever the machine's locale
try
{
    var (positional, options) = Split(args);
    set_num_threads(Option(options, "threads", 2));
    var attention = options.GetValueOrDefault("attention", "sdpa") switch
    {
        "sdpa" => AttentionKind.Sdpa,
        "composed" => AttentionKind.Composed,
        var other => throw new ArgumentException($"--attention must be sdpa or composed, not '{other}'."),
    };
    switch (positional)
    {
        case ["step", var preset, var batch, .. var rest] when rest.Length <= 2:
            Bench.Step(preset, Int(batch, "BATCH"), rest.Length > 0 ? Int(rest[0], "STEPS") : 30, rest.Length > 1 ? Int(rest[1], "WARMUP", allowZero: true) : 5, attention);
            return 0;
        case ["verify", var file]:
            return Bench.Verify(file, attention);
        case ["attention"]:
            Bench.Attention(4, 256, 6, 64, Option(options, "iters", 50), Option(options, "warmup", 5, allowZero: true));
            return 0;
        case ["attention", var b, var t, var nh, var hs]:
            Bench.Attention(Int(b, "B"), Int(t, "T"), Int(nh, "NH"), Int(hs, "HS"), Option(options, "iters", 50), Option(options, "warmup", 5, allowZero: true));
            return 0;
        case ["gemm", .. var shapes]:
            Bench.Gemm(shapes.Length > 0 ? shapes.Select(ParseShape).ToList() : Bench.ModelGemmShapes(), Option(options, "samples", 15));
            return 0;
        default:
            Console.Error.WriteLine(Usage);
            return 2;
    }
}
catch (Exception e) when (e is ArgumentException or FormatException or InvalidDataException or IOException or UnauthorizedAccessException)
{
    Console.Error.WriteLine($"libtorch bench: {e.Message}");
    return 2;
}

static (string[] Positional, Dictionary<string, string> Options) Split(string[] args)
{
    var positional = new List<string>();
    var options = new Dictionary<string, string>(StringComparer.Ordinal);
    for (var i = 0; i < args.Length; i++)
    {
        if (!args[i].StartsWith("--", StringComparison.Ordinal))
        {
            positional.Add(args[i]);
            continue;
        }
        var name = args[i][2..];
        if (name is not ("attention" or "threads" or "iters" or "warmup" or "samples"))
            throw new ArgumentException($"unknown option '{args[i]}'. {Usage}");
        if (i + 1 >= args.Length)
            throw new ArgumentException($"option '{args[i]}' needs a value.");
        options[name] = args[++i];
    }
    return ([.. positional], options);
}

static int Option(Dictionary<string, string> options, string name, int fallback, bool allowZero = false) =>
    options.TryGetValue(name, out var v) ? Int(v, "--" + name, allowZero) : fallback;

static int Int(string s, string what, bool allowZero = false) =>
    int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && (v > 0 || allowZero && v == 0) ? v
        : throw new ArgumentException($"{what} must be a {(allowZero ? "non-negative" : "positive")} integer, not '{s}'.");

static (int M, int N, int K) ParseShape(string s)
{
    var d = s.Split('x');
    return d.Length == 3 ? (Int(d[0], "M"), Int(d[1], "N"), Int(d[2], "K"))
        : throw new ArgumentException($"GEMM shape '{s}' must be MxNxK, e.g. 65x128x768.");
}
