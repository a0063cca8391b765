// `kernels`: what a GPU would make of every kernel, without a GPU. Per kernel: registers, spills, stack and shared
// memory from NVIDIA's `ptxas -v` (CUDA 11.8, PTX ISA 7.8, sm_90 and sm_80), the group size and the groups launched
// in one baby-gpt training step replayed on a dry device shaped like an H100 / A100 (launches recorded from the code
// that launches them, not run), theoretical occupancy from the SM limits, and for the GEMM kernels the instruction
// mix of the main loop from `nvdisasm` of the cubin. Kernel names and geometry come from the code (KernelCatalog,
// LaunchRecorder); only the SM limits below are datasheet figures.
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using SddIlgpu.Layers;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Kernels;
using SddIlgpu.Training;

namespace SddIlgpu.Perf;

/// <summary>Per-SM limits of an NVIDIA architecture (CUDA occupancy calculator figures).</summary>
internal sealed record SmLimits(string Gpu, string Arch, int MaxWarps, int MaxGroups, int Registers, int SharedBytes, int SharedPerGroupMax)
{
    /// <summary>H100: 64 warps, 32 groups, 64 K registers and 228 KB shared memory per SM (227 KB per group).</summary>
    public static SmLimits Sm90 { get; } = new("H100", "sm_90", 64, 32, 65536, 228 * 1024, 227 * 1024);

    /// <summary>A100: 64 warps, 32 groups, 64 K registers and 164 KB shared memory per SM (163 KB per group).</summary>
    public static SmLimits Sm80 { get; } = new("A100", "sm_80", 64, 32, 65536, 164 * 1024, 163 * 1024);

    const int RegisterUnit = 256, SharedUnit = 128, SharedReservedPerGroup = 1024;

    /// <summary>
    /// Resident warps / MaxWarps, with groups per SM = min(MaxGroups, MaxWarps / warps per group,
    /// ⌊Registers / (⌈regs·32 / 256⌉·256)⌋ / warps per group, ⌊SharedBytes / (⌈smem / 128⌉·128 + 1 KB)⌋).
    /// </summary>
    public double Occupancy(int registers, int sharedBytes, int groupSize)
    {
        var warps = (groupSize + 31) / 32;
        var byWarps = MaxWarps / warps;
        var perWarpRegisters = (registers * 32 + RegisterUnit - 1) / RegisterUnit * RegisterUnit;
        var byRegisters = perWarpRegisters == 0 ? int.MaxValue : Registers / perWarpRegisters / warps;
        var perGroupShared = (sharedBytes + SharedUnit - 1) / SharedUnit * SharedUnit + SharedReservedPerGroup;
        var byShared = sharedBytes > SharedPerGroupMax ? 0 : SharedBytes / perGroupShared;
        var groups = Math.Min(Math.Min(MaxGroups, byWarps), Math.Min(byRegisters, byShared));
        return (double)groups * warps / MaxWarps;
    }
}

/// <summary>ptxas's resource line for one kernel and architecture.</summary>
internal readonly record struct PtxasResources(int Registers, int SpillStores, int SpillLoads, int Stack, int Shared);

/// <summary>Instruction mix of a loop in SASS.</summary>
internal readonly record struct LoopMix(int Instructions, int Ffma, int LdsScalar, int Lds64, int Lds128, int Ldg, int Barriers, int Integer);

internal static class KernelReport
{
    /// <summary>The model whose training step the launch counts come from (the kit's baby-gpt: char vocabulary 65).</summary>
    public static ModelConfig BabyGpt => ModelConfig.Preset("baby-gpt", 65, Residual.Post, LinearKind.SddCode);

    public const int Batch = 64;

    public static int Run(TextWriter o)
    {
        var ptxas = KernelCatalog.FindTool("ptxas");
        var nvdisasm = KernelCatalog.FindTool("nvdisasm");
        if (ptxas is null)
        {
            Console.Error.WriteLine("kernels: ptxas was not found on PATH or in ~/.cache/sdd-ci/cuda-11.8/usr/bin; run .ci/fetch-ptxas.sh first.");
            return 2;
        }
        var config = BabyGpt;
        var h100 = Replay(LaunchGeometry.H100, config);
        var a100 = Replay(LaunchGeometry.A100, config);
        var work = Directory.CreateTempSubdirectory("sdd-kernels-");
        try
        {
            o.WriteLine($"kernel report: {KernelCatalog.All.Count} kernels, ILGPU {Device.IlgpuVersion} PTX ISA 7.8, {Version(ptxas)}");
            o.WriteLine($"launches: one training step (zero grads, forward, loss, backward, AdamW) of baby-gpt post/sdd-code, " +
                $"B {Batch}, T {config.SeqLen}, C {config.DModel}, NH {config.NHead}, F {config.FfnHidden}, L {config.NLayer}, V {config.Vocab} (char), " +
                $"replayed dry with launch shapes sized for H100 ({LaunchGeometry.H100.Multiprocessors} SMs) / A100 ({LaunchGeometry.A100.Multiprocessors} SMs)");
            o.WriteLine("occupancy: theoretical, from registers, shared memory and group size against the per-SM limits (docs/kernels.md)");
            o.WriteLine();
            o.WriteLine($"{"kernel",-44} {"regs",7} {"spill",5} {"stack",5} {"smem",6} {"group",5} {"occ H100",8} {"occ A100",8} {"launches",8} {"groups H100",12} {"groups A100",12}");
            foreach (var kernel in KernelCatalog.All)
            {
                var ptx = Path.Combine(work.FullName, KernelCatalog.Name(kernel) + ".ptx");
                File.WriteAllText(ptx, KernelCatalog.CompilePtx(kernel));
                var r90 = Assemble(ptxas, ptx, "sm_90");
                var r80 = Assemble(ptxas, ptx, "sm_80");
                var l90 = h100.Where(l => l.Kernel == kernel.Name).ToList();
                var l80 = a100.Where(l => l.Kernel == kernel.Name).ToList();
                var group = l90.Count > 0 ? l90.Max(l => l.GroupSize) : 0;
                var spill = Math.Max(r90.SpillStores + r90.SpillLoads, r80.SpillStores + r80.SpillLoads);
                var regs = r80.Registers == r90.Registers ? $"{r90.Registers}" : $"{r90.Registers}/{r80.Registers}";
                o.WriteLine($"{KernelCatalog.Name(kernel),-44} {regs,7} {spill,5} {Math.Max(r90.Stack, r80.Stack),5} {r90.Shared,6} " +
                    $"{(group == 0 ? "-" : group.ToString(CultureInfo.InvariantCulture)),5} " +
                    $"{Occ(SmLimits.Sm90, r90, group),8} {Occ(SmLimits.Sm80, r80, group),8} {l90.Count,8} {Groups(l90),12} {Groups(l80),12}");
            }
            o.WriteLine();
            o.WriteLine("regs: sm_90, or sm_90/sm_80 where they differ; smem: sm_90, bytes; spill = spill stores + loads in bytes, worst of the two; '-': not launched in a training step.");
            o.WriteLine($"groups: per launch, min–max over the step's launches of that kernel; {h100.Count} launches in the step (the device's own launch counter agrees).");
            var few = 2 * LaunchGeometry.H100.Multiprocessors;
            o.WriteLine();
            o.WriteLine($"launches below {few} groups (2 per SM on an H100), per kernel: groups × launches");
            foreach (var byKernel in h100.Where(l => l.Groups < few).GroupBy(l => l.Kernel).OrderBy(g => g.Key, StringComparer.Ordinal))
                o.WriteLine($"  {byKernel.Key,-36} " + string.Join(", ", byKernel.GroupBy(l => l.Groups).OrderBy(g => g.Key)
                    .Select(g => $"{g.Key} × {g.Count()}")) + $"  (of {h100.Count(l => l.Kernel == byKernel.Key)} launches)");
            if (nvdisasm is null)
            {
                o.WriteLine("(nvdisasm not found: no instruction mix)");
                return 0;
            }
            foreach (var kernel in KernelCatalog.All.Where(k => k.DeclaringType!.Name.StartsWith("Gemm", StringComparison.Ordinal)))
            {
                var ptx = Path.Combine(work.FullName, KernelCatalog.Name(kernel) + ".ptx");
                var cubin = ptx + ".sm_90.cubin";
                Tool(ptxas, $"-arch=sm_90 -o {cubin} {ptx}");
                var sass = Tool(nvdisasm, $"-c {cubin}");
                var mix = MainLoopMix(sass);
                o.WriteLine();
                o.WriteLine($"{KernelCatalog.Name(kernel)} main loop (sm_90 SASS, innermost loop holding the FFMA): {Describe(mix)}");
                if (SliceTrips.TryGetValue(kernel.DeclaringType!.Name, out var trips))
                {
                    var (slice, others) = SliceMix(sass, trips.Trips);
                    o.WriteLine($"{KernelCatalog.Name(kernel)} whole K slice (the loop around it, main loop counted {trips.Trips}× = {trips.Why}" +
                        $"{(others > 0 ? $"; {others} other inner loop(s) counted once" : "")}): {Describe(slice)}");
                }
            }
            return 0;
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }

    /// <summary>
    /// Writes the PTX (ISA 7.8) and OpenCL C (O2) of every kernel whose <c>Class.Method</c> name contains
    /// <paramref name="name"/> to <paramref name="dir"/>, for reading the code a back end compiles.
    /// </summary>
    public static int WriteSources(string name, string dir)
    {
        var kernels = KernelCatalog.All.Where(k => KernelCatalog.Name(k).Contains(name, StringComparison.Ordinal)).ToList();
        if (kernels.Count == 0)
        {
            Console.Error.WriteLine($"kernel-source: no kernel name contains '{name}'; the kernels are {string.Join(", ", KernelCatalog.All.Select(KernelCatalog.Name))}.");
            return 2;
        }
        Directory.CreateDirectory(dir);
        foreach (var kernel in kernels)
        {
            var path = Path.Combine(dir, KernelCatalog.Name(kernel));
            File.WriteAllText(path + ".ptx", KernelCatalog.CompilePtx(kernel));
            File.WriteAllText(path + ".cl", KernelCatalog.CompileOpenCL(kernel));
            Console.WriteLine($"{path}.ptx, {path}.cl");
        }
        return 0;
    }

    static string Occ(SmLimits sm, PtxasResources r, int group) =>
        group == 0 ? "-" : $"{100 * sm.Occupancy(r.Registers, r.Shared, group):F1}%";

    static string Groups(List<LaunchRecord> launches)
    {
        if (launches.Count == 0)
            return "-";
        long min = launches.Min(l => l.Groups), max = launches.Max(l => l.Groups);
        return min == max ? $"{min}" : $"{min}–{max}";
    }

    public static string Describe(LoopMix m) =>
        m.Instructions == 0 ? "no loop found"
        : $"{m.Instructions} instructions, FFMA {m.Ffma} ({100.0 * m.Ffma / m.Instructions:F0} %), shared loads LDS {m.LdsScalar} / LDS.64 {m.Lds64} / LDS.128 {m.Lds128}, " +
          $"global loads {m.Ldg}, barriers {m.Barriers}, integer/address {m.Integer}";

    /// <summary>Every launch of one training step (after a first step) on a dry device sized like <paramref name="geometry"/>.</summary>
    public static IReadOnlyList<LaunchRecord> Replay(LaunchGeometry geometry, ModelConfig config)
    {
        var recorder = new LaunchRecorder(dry: true);
        using var device = Device.OpenLaunchReplay(geometry, recorder);
        device.Kernels.Gemm.UseSimple = geometry.HostMemory;
        using var weights = new ModelWeights(device, config);
        using var model = new Model(weights, Batch);
        using var optimizer = new AdamW(weights, new AdamWConfig());
        var tokens = new float[Batch * config.SeqLen];
        void Step()
        {
            weights.ZeroGrad();
            model.Tokens.Upload(tokens);
            model.Targets.Upload(tokens);
            model.ForwardLoss(1f / tokens.Length);
            model.Backward();
            optimizer.Step(1e-3f);
        }
        Step();
        recorder.Clear();
        var before = device.Counters.Snapshot();
        Step();
        var counted = (device.Counters.Snapshot() - before).Launches;
        if (counted != recorder.Launches.Count)
            throw new InvalidOperationException($"The replay recorded {recorder.Launches.Count} launches but the device counted {counted}: a kernel is launched without going through KernelInfra.Load.");
        return [.. recorder.Launches];
    }

    static readonly Regex Used = new(@"Used (\d+) registers(?:, (\d+) bytes smem)?", RegexOptions.Compiled);
    static readonly Regex Frame = new(@"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", RegexOptions.Compiled);

    /// <summary>Runs <c>ptxas -v</c> and parses its resource lines (one kernel per file).</summary>
    public static PtxasResources Assemble(string ptxas, string ptx, string arch) =>
        ParsePtxas(Tool(ptxas, $"-v -arch={arch} -o {ptx}.{arch}.cubin {ptx}"));

    public static PtxasResources ParsePtxas(string output)
    {
        var used = Used.Match(output);
        var frame = Frame.Match(output);
        if (!used.Success || !frame.Success)
            throw new InvalidOperationException($"ptxas -v printed no resource usage:\n{output}");
        static int I(Group g) => g.Success ? int.Parse(g.Value, CultureInfo.InvariantCulture) : 0;
        return new(I(used.Groups[1]), I(frame.Groups[2]), I(frame.Groups[3]), I(frame.Groups[1]), I(used.Groups[2]));
    }

    static readonly Regex Instruction = new(@"^\s*/\*([0-9a-f]{4,})\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)([^;]*);", RegexOptions.Compiled);
    static readonly Regex Label = new(@"^\s*(\.L_\w+):", RegexOptions.Compiled);
    static readonly Regex Target = new(@"`\((\.L_\w+)\)", RegexOptions.Compiled);

    /// <summary>
    /// The instruction mix of the main loop in <c>nvdisasm -c</c> output: a loop is a backward branch to a label; the
    /// main loop is the shortest one holding at least half the FFMA of the loop with the most (the innermost k loop,
    /// not the tile loop around it).
    /// </summary>
    public static LoopMix MainLoopMix(string sass)
    {
        var (ops, loops) = Loops(sass);
        var most = loops.Count == 0 ? 0 : loops.Max(l => l.Ffma);
        if (most == 0)
            return default;
        var loop = loops.Where(l => 2 * l.Ffma >= most).MinBy(l => l.End - l.Start);
        return Mix(ops.Skip(loop.Start).Take(loop.End - loop.Start + 1).Select(o => o.Op));
    }

    /// <summary>
    /// Main-loop trips per K slice, from the kernels' source constants (SASS does not state trip counts): the blocked
    /// GEMM's k loop does two k steps per trip over an 8-wide slice, the tiled GEMM's one k step per trip over 16.
    /// </summary>
    static readonly Dictionary<string, (int Trips, string Why)> SliceTrips = new()
    {
        [nameof(GemmBlocked)] = (GemmBlocked.KSlice / 2, $"KSlice {GemmBlocked.KSlice} / 2 k steps per trip"),
        [nameof(GemmTiled)] = (GemmTiled.KSlice, $"KSlice {GemmTiled.KSlice} / 1 k step per trip"),
    };

    /// <summary>
    /// The instruction mix of one trip of the loop around the main loop (the K-slice loop: global loads, shared
    /// stores, barrier), with the main loop's body counted <paramref name="mainTrips"/> times and any other loop
    /// nested in the slice counted once (their count is returned). Static counts along every forward branch: the
    /// slice as executed when a next slice is prefetched.
    /// </summary>
    public static (LoopMix Slice, int OtherInnerLoops) SliceMix(string sass, int mainTrips)
    {
        var (ops, loops) = Loops(sass);
        var most = loops.Count == 0 ? 0 : loops.Max(l => l.Ffma);
        if (most == 0)
            return (default, 0);
        var main = loops.Where(l => 2 * l.Ffma >= most).MinBy(l => l.End - l.Start);
        var around = loops.Where(l => l.Start <= main.Start && l.End >= main.End && (l.End - l.Start) > (main.End - main.Start))
            .OrderBy(l => l.End - l.Start).FirstOrDefault();
        if (around == default)
            return (default, 0);
        var others = loops.Count(l => l != main && l != around && l.Start >= around.Start && l.End <= around.End
            && !(l.Start <= main.Start && l.End >= main.End));
        var body = new List<string>();
        for (var i = around.Start; i <= around.End; i++)
        {
            var inMain = i >= main.Start && i <= main.End;
            for (var r = 0; r < (inMain ? mainTrips : 1); r++)
                body.Add(ops[i].Op);
        }
        return (Mix(body), others);
    }

    static (List<(long Address, string Op, string Operands)> Ops, List<(int Start, int End, int Ffma)> Loops) Loops(string sass)
    {
        var ops = new List<(long Address, string Op, string Operands)>();
        var labels = new Dictionary<string, int>();
        foreach (var line in sass.Split('\n'))
        {
            var label = Label.Match(line);
            if (label.Success)
            {
                labels[label.Groups[1].Value] = ops.Count;
                continue;
            }
            var m = Instruction.Match(line);
            if (m.Success)
                ops.Add((long.Parse(m.Groups[1].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture), m.Groups[2].Value, m.Groups[3].Value));
        }
        var loops = new List<(int Start, int End, int Ffma)>();
        for (var i = 0; i < ops.Count; i++)
        {
            if (!ops[i].Op.StartsWith("BRA", StringComparison.Ordinal))
                continue;
            var t = Target.Match(ops[i].Operands);
            if (!t.Success || !labels.TryGetValue(t.Groups[1].Value, out var start) || start > i)
                continue;
            loops.Add((start, i, ops.Skip(start).Take(i - start + 1).Count(o => o.Op.StartsWith("FFMA", StringComparison.Ordinal))));
        }
        return (ops, loops);
    }

    static LoopMix Mix(IEnumerable<string> ops)
    {
        var body = ops.Where(op => op != "NOP").ToList();
        static bool Is(string op, string name) => op == name || op.StartsWith(name + ".", StringComparison.Ordinal);
        string[] integer = ["IMAD", "IADD3", "LEA", "SHF", "LOP3", "ISETP", "IABS", "MOV", "SEL", "ISCADD", "IMNMX", "LEA.HI"];
        return new LoopMix(
            body.Count,
            body.Count(op => Is(op, "FFMA")),
            body.Count(op => op is "LDS" or "LDS.U" or "LDS.U.32" or "LDS.32"),
            body.Count(op => op.StartsWith("LDS", StringComparison.Ordinal) && op.Contains(".64", StringComparison.Ordinal)),
            body.Count(op => op.StartsWith("LDS", StringComparison.Ordinal) && op.Contains(".128", StringComparison.Ordinal)),
            body.Count(op => op.StartsWith("LDG", StringComparison.Ordinal)),
            body.Count(op => Is(op, "BAR")),
            body.Count(op => integer.Any(i => Is(op, i))));
    }

    static string Version(string ptxas) => Tool(ptxas, "--version").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
        .LastOrDefault(l => l.StartsWith("Cuda compilation tools", StringComparison.Ordinal)) ?? "ptxas";

    static string Tool(string tool, string arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(tool, arguments) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        var all = stdout + stderr.Result;
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{Path.GetFileName(tool)} {arguments} failed ({process.ExitCode}):\n{all}");
        return all;
    }
}
