// The managed GEMM against a float64 reference in every form the model uses (x·Wᵀ, dY·W, dYᵀ·X with β = 1,
// batched GQA products with InnerDiv), edge sizes 1, 7, 33, 65, the weight gradient at the model's strides and
// ragged sizes, β = 0 never reading C, determinism (repeats and part counts), one launch per call, and a
// cross-check against the ILGPU kernel on ilgpu-cpu.
using NUnit.Framework;
using SddIlgpu.Tensors.Managed;
using SddIlgpu.Tensors.Ops;
using SddIlgpu.Tests.Support;
using static SddIlgpu.Tests.Tensors.ManagedTestKit;

namespace SddIlgpu.Tests.Tensors;

public sealed class ManagedGemmTests
{
    static double[] Reference(in GemmSpec s, float[] a, MatrixLayout la, float[] b, MatrixLayout lb, float[] c, MatrixLayout lc) =>
        SddIlgpu.Training.Conformance.MatrixChecks.GemmReference(s, a, la, b, lb, c, lc);

    static (GemmSpec, MatrixLayout, MatrixLayout, MatrixLayout, int, int, int) Dense(int m, int n, int k, bool ta, bool tb, float beta) =>
        (new GemmSpec(m, n, k, ta, tb, 1f, beta), new MatrixLayout(ta ? m : k), new MatrixLayout(tb ? k : n), new MatrixLayout(n), m * k, k * n, m * n);

    [TestCase(1, 1, 1, false, true, 0f)]
    [TestCase(7, 33, 65, false, true, 0f)]   // x·Wᵀ
    [TestCase(65, 7, 33, false, false, 0f)]  // dY·W
    [TestCase(33, 65, 7, true, false, 1f)]   // dYᵀ·X, accumulate
    [TestCase(65, 65, 65, true, true, 0.5f)]
    [TestCase(40, 70, 300, false, true, 1f)] // K spans two blocks
    [TestCase(9, 66, 300, false, true, 1f)]  // x·Wᵀ, two columns past the last full panel: dot-product tail
    [TestCase(19, 80, 37, false, true, 0f)]  // x·Wᵀ, a half-width edge panel
    [TestCase(17, 40, 600, true, false, 1f)]
    [TestCase(65, 128, 300, true, false, 1f)]   // dYᵀ·X at vocab 65: packed Aᵀ panels, one-row M edge, B in place
    [TestCase(200, 100, 700, false, false, 1f)] // dY·W with B packed: full panels row by row, then a 4-column edge panel
    [TestCase(200, 100, 700, true, false, 1f)]  // dYᵀ·X with B packed
    [TestCase(67, 160, 40, true, false, 1f)]    // three-row M edge over 4 + 1 panels, B in place
    [TestCase(70, 40, 33, true, false, 0f)]     // six-row M edge (full tile), packed B with a partial panel
    [TestCase(3, 50, 20, true, true, 0.5f)]     // M < tile: row kernel over a partial packed panel group
    [TestCase(2, 64, 70, false, false, 1f)]     // dY·W with two rows, B in place
    [TestCase(193, 64, 1030, false, false, 0f)] // big row-major B: packed full panels
    public void DenseFormsMatchFloat64(int m, int n, int k, bool ta, bool tb, float beta)
    {
        var (s, la, lb, lc, na, nb, nc) = Dense(m, n, k, ta, tb, beta);
        s = s with { Alpha = 0.75f };
        float[] a = Check.Random(na, 1), b = Check.Random(nb, 2), c = Check.Random(nc, 3);
        var got = Run(Cpu, [a, b, c], t => Cpu.Ops.Gemm.Gemm(s, t[0], la, t[1], lb, t[2], lc));
        Check.Close(got[2], Reference(s, a, la, b, lb, c, lc), 1e-5, 1e-4, $"gemm {s}");
    }

    /// <summary>
    /// dW += dYᵀ·X as the model calls it: dY read through its real row stride (the gate half of the fused (n, 2F)
    /// up/gate buffer; a 2048-float stride, whose Aᵀ panels alias in cache and are packed), ragged M (vocabulary 65),
    /// N past the last full panel (B read in place, its tail panel packed; N &gt; NC = 512: two column blocks), K not a
    /// multiple of KC. α = 1 runs C through the micro-kernel's accumulators; α = 0.75 stages the sum first.
    /// </summary>
    [TestCase(65, 128, 300, 65, 0, 1f)]
    [TestCase(65, 344, 300, 65, 0, 1f)]      // vocabulary rows, N = 10·32 + 24
    [TestCase(65, 600, 270, 65, 0, 1f)]      // two column blocks, the one-row M edge over both and the tail
    [TestCase(176, 88, 300, 352, 176, 1f)]   // tiny's gate: offset F, lda 2F; N = 2·32 + 24
    [TestCase(40, 176, 520, 2048, 1024, 1f)] // aliasing stride: packed Aᵀ panels, three k blocks
    [TestCase(130, 600, 260, 130, 0, 0.75f)] // general α over two column blocks, in-place Aᵀ
    [TestCase(67, 50, 513, 67, 0, 0.75f)]
    [TestCase(200, 230, 300, 200, 0, 1f)]    // M ≥ 2·MC with a big B: B packed whole, partial last panel
    public void WeightGradientMatchesFloat64(int m, int n, int k, int lda, int offset, float alpha)
    {
        var s = new GemmSpec(m, n, k, TransA: true, Alpha: alpha, Beta: 1f);
        MatrixLayout la = new(lda, Offset: offset), lb = new(n), lc = new(n);
        float[] a = Check.Random(offset + k * lda, 21), b = Check.Random(k * n, 22), c = Check.Random(m * n, 23);
        var got = Run(Cpu, [a, b, c], t => Cpu.Ops.Gemm.Gemm(s, t[0], la, t[1], lb, t[2], lc));
        Check.Close(got[2], Reference(s, a, la, b, lb, c, lc), 1e-5, 1e-4, $"gemm {s} lda {lda}");
    }

    /// <summary>
    /// A grouped GEMM over one shared B gives every member the bits of its own Gemm call, one launch each, and matches
    /// float64; on ilgpu-cpu the interface's default (a Gemm per member) agrees. Members: M = 200 alone would pack B, 65
    /// would read it in place, and two halves of one A as up and gate are (lda 2F, offset F); N = 230 has a partial
    /// last panel. The x·Wᵀ form shares a transposed B.
    /// </summary>
    [TestCase(true, 230, 300)]  // dW += dYᵀ·X: mixed in-place and packed members, B packed once
    [TestCase(true, 344, 96)]   // every member would read B in place (K·ldb ≤ 64 Ki floats): only the tail packed
    [TestCase(false, 230, 300)] // y = x·Wᵀ over a shared W (transposed B)
    public void SharedBGivesEachMemberTheBitsOfItsOwnCall(bool weightGradient, int n, int k)
    {
        var spec = weightGradient ? new GemmSpec(0, n, k, TransA: true, Beta: 1f) : new GemmSpec(0, n, k, TransB: true, Alpha: 0.5f);
        (int M, int Ld, int Offset)[] shape = [(200, 200, 0), (65, 65, 0), (88, 176, 0), (88, 176, 88)];
        MatrixLayout lb = new(weightGradient ? n : k);
        // Inputs: B, then per member its A (the last two share one tensor) and its C.
        var inputs = new List<float[]> { Check.Random(k * n, 40) };
        foreach (var (m, ld, offset) in shape.Take(3))
            inputs.Add(Check.Random(weightGradient ? k * ld : m * k, 41 + m));
        foreach (var (m, _, _) in shape)
            inputs.Add(Check.Random(m * n, 50 + m));
        MatrixLayout La(int g) => weightGradient ? new(shape[g].Ld, Offset: shape[g].Offset) : new(k);
        int ATensor(int g) => 1 + Math.Min(g, 2);
        GemmMember[] Members(SddIlgpu.Tensors.Tensor[] t) =>
            [.. Enumerable.Range(0, shape.Length).Select(g => new GemmMember(shape[g].M, t[ATensor(g)], La(g), t[4 + g], new MatrixLayout(n)))];
        float[][] all = [.. inputs];

        var separate = Run(Cpu, all, t =>
        {
            foreach (var m in Members(t))
                Cpu.Ops.Gemm.Gemm(spec with { M = m.M }, m.A, m.La, t[0], lb, m.C, m.Lc);
        });
        var launches = 0L;
        var grouped = Run(Cpu, all, t => launches = Launches(Cpu, () => Cpu.Ops.Gemm.GemmSharedB(spec, Members(t), t[0], lb)));
        Assert.That(launches, Is.EqualTo(shape.Length), "one launch per member");
        var kernels = TestDevices.Get("ilgpu-cpu");
        var viaDefault = Run(kernels, all, t => kernels.Ops.Gemm.GemmSharedB(spec, Members(t), t[0], lb));
        for (var g = 0; g < shape.Length; g++)
        {
            Check.BitIdentical(grouped[4 + g], separate[4 + g], $"member {g} (M = {shape[g].M}): grouped vs its own call");
            var s = spec with { M = shape[g].M };
            var want = Reference(s, all[ATensor(g)], La(g), all[0], lb, all[4 + g], new MatrixLayout(n));
            Check.Close(grouped[4 + g], want, 1e-5, 1e-4, $"member {g} vs float64");
            Check.Close(viaDefault[4 + g], want, 1e-5, 1e-4, $"member {g} on ilgpu-cpu (the interface's default)");
        }
    }

    /// <summary>The same bits whether a call runs as one, two or three row ranges (with panels stolen between them): no sum depends on the split.</summary>
    [TestCase(65, 344, 300, 65, false)]
    [TestCase(176, 600, 270, 352, false)]
    [TestCase(67, 50, 513, 67, true)]
    public void WeightGradientBitsDoNotDependOnThePartCount(int m, int n, int k, int lda, bool scaled)
    {
        var s = new GemmSpec(m, n, k, TransA: true, Alpha: scaled ? 0.75f : 1f, Beta: 1f);
        MatrixLayout la = new(lda), lb = new(n), lc = new(n);
        float[][] inputs = [Check.Random(k * lda, 24), Check.Random(k * n, 25), Check.Random(m * n, 26)];
        var one = Run(Cpu, inputs, t => new ManagedGemm(Cpu, 1).Gemm(s, t[0], la, t[1], lb, t[2], lc))[2];
        foreach (var parts in new[] { 2, 3 })
        {
            var got = Run(Cpu, inputs, t => new ManagedGemm(Cpu, parts).Gemm(s, t[0], la, t[1], lb, t[2], lc))[2];
            Check.BitIdentical(got, one, $"gemm {s}: {parts} parts vs 1");
        }
    }

    /// <summary>
    /// A call too small to fan out runs its ranges on one thread: the first from its front, the others taken from
    /// their backs a third of an MC block at a time, the path a worker that finished early takes. Same bits.
    /// </summary>
    [TestCase(40, 48, 9, false)]
    [TestCase(70, 20, 12, true)]
    public void StolenPanelsGiveTheSameBits(int m, int n, int k, bool transA)
    {
        var s = new GemmSpec(m, n, k, TransA: transA, TransB: !transA, Beta: 1f);
        MatrixLayout la = new(transA ? m : k), lb = new(transA ? n : k), lc = new(n);
        float[][] inputs = [Check.Random(m * k, 27), Check.Random(k * n, 28), Check.Random(m * n, 29)];
        var one = Run(Cpu, inputs, t => new ManagedGemm(Cpu, 1).Gemm(s, t[0], la, t[1], lb, t[2], lc))[2];
        Check.Close(one, Reference(s, inputs[0], la, inputs[1], lb, inputs[2], lc), 1e-5, 1e-4, $"gemm {s}");
        foreach (var parts in new[] { 2, 4 })
        {
            var got = Run(Cpu, inputs, t => new ManagedGemm(Cpu, parts).Gemm(s, t[0], la, t[1], lb, t[2], lc))[2];
            Check.BitIdentical(got, one, $"gemm {s}: {parts} parts, stolen vs 1");
        }
    }

    /// <summary>Owners taking blocks from the fronts and thieves taking panels from the backs, concurrently, claim every panel exactly once.</summary>
    [Test]
    public void PanelRangesHandOutEveryPanelOnce()
    {
        const int panels = 1003, ranges = 3;
        var ranged = new PanelRanges(ranges);
        for (var round = 0; round < 200; round++)
        {
            ranged.Reset(panels, ranges);
            var claims = new int[panels];
            void Claim(int start, int end)
            {
                for (var p = start; p < end; p++)
                    Interlocked.Increment(ref claims[p]);
            }
            Parallel.For(0, 4, worker =>
            {
                if (ranged.StartNext() is var own and >= 0)
                    while (ranged.TakeFront(own, 12, 4, out var start, out var end))
                        Claim(start, end);
                for (var r = 0; r < ranged.Count; r++)
                    while (ranged.TakeBack(r, 1 + worker, out var start, out var end))
                        Claim(start, end);
            });
            Assert.That(claims, Is.All.EqualTo(1), $"round {round}");
        }
    }

    /// <summary>
    /// C += Aᵀ·B equals C + (Aᵀ·B into zeros) bit for bit while K fits one k-block: a process accumulating two
    /// micro-batches must round like two MPI ranks summing their gradients (DistributedTests). The micro-kernel once
    /// started its k-sum from C, which broke this in the last bit (`wq.weight` under tests/stress.sh).
    /// </summary>
    [TestCase(64, 64, 32, 64)]     // full 8×32 / 6×16 tiles: the register-accumulating micro-kernel
    [TestCase(65, 344, 200, 65)]   // ragged edges and packed Aᵀ
    [TestCase(176, 96, 256, 352)]  // Aᵀ read in place, K = one whole k-block
    public void AccumulatingAddsCAfterTheSumLikeAnAllreduce(int m, int n, int k, int lda)
    {
        MatrixLayout la = new(lda), lb = new(n), lc = new(n);
        float[] a = Check.Random(k * lda, 31), b = Check.Random(k * n, 32), c = Check.Random(m * n, 33);
        var accumulate = new GemmSpec(m, n, k, TransA: true, Beta: 1f);
        var got = Run(Cpu, [a, b, c], t => Cpu.Ops.Gemm.Gemm(accumulate, t[0], la, t[1], lb, t[2], lc))[2];
        var sum = Run(Cpu, [a, b, new float[m * n]], t => Cpu.Ops.Gemm.Gemm(accumulate with { Beta = 0f }, t[0], la, t[1], lb, t[2], lc))[2];
        Check.BitIdentical(got, [.. c.Select((x, i) => x + sum[i])], $"C + Aᵀ·B {accumulate}");
    }

    [Test]
    public void BetaZeroNeverReadsC()
    {
        var (s, la, lb, lc, na, nb, nc) = Dense(9, 35, 20, false, true, 0f);
        float[] a = Check.Random(na, 4), b = Check.Random(nb, 5), c = Enumerable.Repeat(float.NaN, nc).ToArray();
        var got = Run(Cpu, [a, b, c], t => Cpu.Ops.Gemm.Gemm(s, t[0], la, t[1], lb, t[2], lc));
        Check.Close(got[2], Reference(s, a, la, b, lb, new float[nc], lc), 1e-5, 1e-4, "β = 0 over NaN");
    }

    /// <summary>scores (B, NH, T, T) = q·kᵀ with q, k (B, T, H·HS) and kv head h / (NH / KVH): GQA through InnerDiv.</summary>
    [TestCase(2, 4, 2, 7, 5)]
    [TestCase(1, 3, 1, 33, 8)]
    public void BatchedGqaScoresAndContextMatchFloat64(int B, int NH, int KVH, int T, int HS)
    {
        float[] q = Check.Random(B * T * NH * HS, 6), k = Check.Random(B * T * KVH * HS, 7), scores = Check.Random(B * NH * T * T, 8);
        var s = new GemmSpec(T, T, HS, TransB: true, Alpha: 0.5f, BatchOuter: B, BatchInner: NH);
        var lq = new MatrixLayout(NH * HS, T * NH * HS, HS);
        var lk = new MatrixLayout(KVH * HS, T * KVH * HS, HS, NH / KVH);
        var ls = new MatrixLayout(T, NH * T * T, T * T);
        var got = Run(Cpu, [q, k, scores], t => Cpu.Ops.Gemm.Gemm(s, t[0], lq, t[1], lk, t[2], ls));
        Check.Close(got[2], Reference(s, q, lq, k, lk, scores, ls), 1e-5, 1e-4, "batched q·kᵀ");

        // ctx (B, T, NH·HS) = P·v, written strided into the head's columns.
        var ctx = Check.Random(B * T * NH * HS, 9);
        var sc = new GemmSpec(T, HS, T, BatchOuter: B, BatchInner: NH);
        var lp = new MatrixLayout(T, NH * T * T, T * T);
        var got2 = Run(Cpu, [scores, k, ctx], t => Cpu.Ops.Gemm.Gemm(sc, t[0], lp, t[1], lk, t[2], lq));
        Check.Close(got2[2], Reference(sc, scores, lp, k, lk, ctx, lq), 1e-5, 1e-4, "batched P·v");
    }

    [TestCase(130, 75, 300)]
    [TestCase(65, 128, 300)]
    public void RepeatsBitForBitAndCountsOneLaunch(int m, int n, int k)
    {
        var (s, la, lb, lc, na, nb, nc) = Dense(m, n, k, true, false, 1f);
        float[][] inputs = [Check.Random(na, 10), Check.Random(nb, 11), Check.Random(nc, 12)];
        Deterministic(inputs, t => Cpu.Ops.Gemm.Gemm(s, t[0], la, t[1], lb, t[2], lc), "gemm");
        Run(Cpu, inputs, t => Assert.That(Launches(Cpu, () => Cpu.Ops.Gemm.Gemm(s, t[0], la, t[1], lb, t[2], lc)), Is.EqualTo(1)));
    }

    [Test]
    public void RejectsOperandsOutsideTheirTensors()
    {
        var (s, la, lb, lc, na, nb, nc) = Dense(8, 8, 8, false, false, 0f);
        Run(Cpu, [new float[na - 1], new float[nb], new float[nc]], t =>
            Assert.Throws<ArgumentException>(() => Cpu.Ops.Gemm.Gemm(s, t[0], la, t[1], lb, t[2], lc)));
    }

    [TestCase(33, 65, 7, false, true, 0f)]
    [TestCase(7, 33, 65, true, false, 1f)]
    public void MatchesIlgpuKernel(int m, int n, int k, bool ta, bool tb, float beta)
    {
        var (s, la, lb, lc, na, nb, nc) = Dense(m, n, k, ta, tb, beta);
        CrossCheck([Check.Random(na, 13), Check.Random(nb, 14), Check.Random(nc, 15)],
            (d, t) => d.Ops.Gemm.Gemm(s, t[0], la, t[1], lb, t[2], lc), [2], 1e-5, 1e-4, "gemm");
    }

    /// <summary>
    /// The GEMM's and fused attention's loops (not their entry points, which check and dispatch) are compiled optimised on
    /// their first call. Left to tiered compilation,
    /// a code path a new shape takes first (the partial last panel of 64×176×512) ran unoptimised for its first ~150 ms,
    /// and some processes settled with Tile and APanelOuter still in tier-0 code: 88–131 µs a call instead of 62
    /// (docs/perf.md, session 7). Every method of these types that has a body must carry the attribute.
    /// </summary>
    [TestCase(typeof(ManagedGemm))]
    [TestCase(typeof(GemmMicroKernel))]
    [TestCase(typeof(GemmPacking))]
    [TestCase(typeof(ManagedAttention))]
    [TestCase(typeof(AttentionKernels))]
    public void HotManagedCodeSkipsTieredCompilation(Type type)
    {
        var flags = System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.Public
            | System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.DeclaredOnly;
        var types = new[] { type }.Concat(type.GetNestedTypes(System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Public)
            .Where(t => t.IsSubclassOf(type)));
        var hot = types.SelectMany(t => t.GetMethods(flags))
            .Where(m => !m.IsAbstract && m.GetMethodBody() is { } body && body.GetILAsByteArray()!.Length > 64 && !m.Name.StartsWith('<')
                && m.Name is not ("Gemm" or "GemmSharedB" or "GemmPackedB" or "Forward" or "Backward" or "Validate" or "CheckOperand" or "Check" or "Best" or "Vector256Kernel"))
            .ToList();
        Assert.That(hot, Is.Not.Empty);
        var missing = hot.Where(m => !m.MethodImplementationFlags.HasFlag(System.Reflection.MethodImplAttributes.AggressiveOptimization))
            .Select(m => $"{m.DeclaringType!.Name}.{m.Name}");
        Assert.That(missing, Is.Empty);
    }
}
