// Packed linear weights on cpu (Ops/IOps.cs IWeightPackingOps): products from the packed copies give the GEMM's
// bits on W itself, in every form and edge the layers use; the fused AdamW gives plain AdamW's bits and leaves
// every copy equal to a fresh pack; a stale copy is refused, and the verify mode catches a write that skipped
// Invalidate; a model trained with packing gives the same bits as one trained without.
using NUnit.Framework;
using SddIlgpu.Layers;
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Managed;
using SddIlgpu.Tensors.Ops;
using SddIlgpu.Tests.Support;
using SddIlgpu.Training;
using static SddIlgpu.Tests.Tensors.ManagedTestKit;

namespace SddIlgpu.Tests.Tensors;

public sealed class WeightPackingTests
{
    static IWeightPackingOps Packing => Cpu.Ops.WeightPacking ?? throw new AssertionException("the cpu device packs weights");

    /// <summary>
    /// y = x·Wᵀ (written into an offset half of a wider buffer, as up and gate are) and dX = dY·W (overwritten and
    /// accumulated) from the packed copies equal the GEMM on W bit for bit: widths on and off the 16/32-column
    /// panels, the x·Wᵀ dot-product tail (Out = 65), one row and many.
    /// </summary>
    [TestCase(1, 64, 48)]
    [TestCase(7, 65, 40)]   // Out past the last full panel by one: dot-product tail columns
    [TestCase(33, 40, 65)]  // In past the last full panel: the dY·W copy's zero-padded panel
    [TestCase(130, 96, 384)]
    [TestCase(200, 176, 64)] // M past 2·MC: work stealing over row ranges
    public void PackedProductsEqualTheGemmOnW(int rows, int outFeatures, int inFeatures)
    {
        using var arena = Cpu.Allocate(checked(outFeatures * inFeatures + PackedWeight.Length(outFeatures, inFeatures)
            + rows * inFeatures + 2L * rows * 2 * outFeatures + rows * outFeatures + 2L * rows * inFeatures), "packing-test");
        var w = arena.Take((outFeatures, inFeatures), "W");
        var packed = Packing.Create(w, arena.Take(checked((int)PackedWeight.Length(outFeatures, inFeatures)), "packed"), "W");
        Tensor x = arena.Take((rows, inFeatures), "x"), yPlain = arena.Take((rows, 2 * outFeatures), "y"), yPacked = arena.Take((rows, 2 * outFeatures), "y2"),
            dY = arena.Take((rows, outFeatures), "dY"), dXPlain = arena.Take((rows, inFeatures), "dX"), dXPacked = arena.Take((rows, inFeatures), "dX2");
        w.Upload(Check.Random(outFeatures * inFeatures, 1));
        x.Upload(Check.Random(rows * inFeatures, 2));
        dY.Upload(Check.Random(rows * outFeatures, 3));
        var start = Check.Random(rows * 2 * outFeatures, 4);
        yPlain.Upload(start);
        yPacked.Upload(start);
        Assert.That(() => Packing.Forward(x, packed, yPacked, new MatrixLayout(2 * outFeatures)), Throws.InvalidOperationException,
            "a weight never packed is not current");
        Packing.Pack(packed);
        Assert.That(packed.Current, Is.True);
        var half = new MatrixLayout(2 * outFeatures, Offset: outFeatures);
        Cpu.Ops.Gemm.Gemm(new GemmSpec(rows, outFeatures, inFeatures, TransB: true), x, new MatrixLayout(inFeatures), w, new MatrixLayout(inFeatures), yPlain, half);
        Packing.Forward(x, packed, yPacked, half);
        Check.BitIdentical(yPacked.ToArray(), yPlain.ToArray(), "x·Wᵀ");
        foreach (var accumulate in new[] { false, true })
        {
            var gemm = new GemmSpec(rows, inFeatures, outFeatures, Beta: accumulate ? 1f : 0f);
            Cpu.Ops.Gemm.Gemm(gemm, dY, new MatrixLayout(outFeatures), w, new MatrixLayout(inFeatures), dXPlain, new MatrixLayout(inFeatures));
            Packing.BackwardInput(dY, new MatrixLayout(outFeatures), packed, dXPacked, accumulate);
            Check.BitIdentical(dXPacked.ToArray(), dXPlain.ToArray(), $"dY·W, accumulate {accumulate}");
        }
        packed.Invalidate();
        Assert.That(() => Packing.BackwardInput(dY, new MatrixLayout(outFeatures), packed, dXPacked, false), Throws.InvalidOperationException);
    }

    /// <summary>
    /// The fused AdamW over a flat arena holding three weights (ragged sizes, gaps before, between and after them)
    /// gives the plain AdamW's bits for every parameter and both moments, with and without clipping, and leaves each
    /// weight current and equal to a fresh pack of its updated values.
    /// </summary>
    [TestCase(1f)]
    [TestCase(0f)]
    public void FusedAdamWEqualsAdamWAndRepacksEveryWeight(float clip)
    {
        (int Offset, int Out, int In)[] weights = [(5, 40, 24), (5 + 40 * 24 + 70, 33, 65), (5 + 40 * 24 + 70 + 33 * 65, 64, 32)];
        var n = weights[^1].Offset + 64 * 32 + 50_000; // a long tail past the last weight: several gap chunks
        var storage = weights.Sum(w => PackedWeight.Length(w.Out, w.In));
        var hyper = new AdamWStep(3e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.19f, 0.0975f, clip);
        float[] p0 = Check.Random(n, 5), g = Check.Random(n, 6), m0 = Check.Random(n, 7), v0 = Check.Random(n, 8).Select(Math.Abs).ToArray();
        var mask = Enumerable.Range(0, n).Select(i => i % 3 == 0 ? 0f : 1f).ToArray();
        float[][] Step(bool fused)
        {
            using var arena = Cpu.Allocate(5L * n + 1 + storage + 8, "adamw-pack");
            // the copies first, from a 32-byte boundary (each is whole 32-float multiples), so the streamed stores run
            arena.Take(7 - Misalignment(arena.Take(1, "probe")), "pad");
            var storages = weights.Select((w, i) => arena.Take(checked((int)PackedWeight.Length(w.Out, w.In)), $"packed{i}")).ToList();
            Tensor p = arena.Take(n, "p"), tg = arena.Take(n, "g"), m = arena.Take(n, "m"), v = arena.Take(n, "v"), k = arena.Take(n, "mask"),
                sumSquares = arena.Take(1, "sumsq");
            p.Upload(p0);
            tg.Upload(g);
            m.Upload(m0);
            v.Upload(v0);
            k.Upload(mask);
            sumSquares.Upload([(float)g.Sum(x => (double)x * x)]);
            var packed = weights.Select((w, i) => Packing.Create(p.Slice(w.Offset, (w.Out, w.In), $"w{i}"), storages[i], $"w{i}")).ToList();
            if (fused)
                Packing.AdamW(hyper, p, tg, m, v, k, sumSquares, packed);
            else
                Cpu.Ops.Optimizer.AdamW(hyper, p, tg, m, v, k, sumSquares);
            var result = new List<float[]> { p.ToArray(), m.ToArray(), v.ToArray() };
            if (fused)
                foreach (var w in packed)
                {
                    Assert.That(w.Current, Is.True, $"{w.Name} is current after the fused AdamW");
                    var copies = w.Storage.ToArray();
                    Packing.Pack(w);
                    Check.BitIdentical(copies, w.Storage.ToArray(), $"{w.Name}: the fused AdamW's copies against a fresh pack");
                }
            return [.. result];
        }
        var plain = Step(false);
        var fusedResult = Step(true);
        string[] names = ["parameters", "m", "v"];
        for (var i = 0; i < 3; i++)
            Check.BitIdentical(fusedResult[i], plain[i], $"fused AdamW {names[i]}");
    }

    /// <summary>Floats past the last 32-byte boundary at t's start.</summary>
    static unsafe int Misalignment(Tensor t)
    {
        fixed (float* p = t.HostSpan())
            return (int)(((nint)p & 31) / 4);
    }

    /// <summary>
    /// The packed copies follow the weights: stale after Initialize and uploads, current after an AdamW step; with
    /// verification on, a weight written behind the copies' back is reported instead of used.
    /// </summary>
    [Test]
    public void CopiesAreCurrentOnlyBetweenARepackAndTheNextWrite()
    {
        var config = new ModelConfig(54, 32, 1, 2, 1, 48, 8, Residual.Post, LinearKind.SddCode);
        using var weights = new ModelWeights(Cpu, config);
        Assert.That(weights.Packed, Has.Count.EqualTo(7), "wq, wk, wv, wo, w_up, w_gate, w_down");
        Assert.That(weights.Packed.Select(p => p.Current), Is.All.False);
        weights.Initialize(1);
        using var model = new Model(weights, 2);
        using var adam = new AdamW(weights, new AdamWConfig());
        model.Tokens.Upload(Enumerable.Range(0, 16).Select(i => (float)(i % 54)).ToArray());
        model.Targets.Upload(Enumerable.Range(0, 16).Select(i => (float)((i + 1) % 54)).ToArray());
        weights.ZeroGrad();
        model.ForwardLoss(1f / 16);
        model.Backward();
        adam.Step(1e-3f);
        Assert.That(weights.Packed.Select(p => p.Current), Is.All.True, "AdamW repacked every weight");
        weights.Upload(weights.Values.ToArray());
        Assert.That(weights.Packed.Select(p => p.Current), Is.All.False, "an upload makes the copies stale");
        adam.Step(1e-3f);
        var wq = weights["blocks.0.attn.wq.weight"];
        var values = wq.Value.ToArray();
        values[3] += 1f;
        wq.Value.Upload(values); // behind the copies' back: no Invalidate
        var verify = ManagedWeightPacking.Verify;
        ManagedWeightPacking.Verify = true;
        try
        {
            Assert.That(() => model.Forward(), Throws.InvalidOperationException.With.Message.Contains("Invalidate"));
            weights.InvalidatePacked();
            Assert.That(() => model.Forward(), Throws.Nothing, "invalidated: the products read W itself");
        }
        finally
        {
            ManagedWeightPacking.Verify = verify;
        }
    }

    /// <summary>
    /// Three steps of a model whose device packs its weights and of the same model on the same device without
    /// packing (an op set without <see cref="OpSet.WeightPacking"/>) give bit-identical losses, weights and moments.
    /// </summary>
    [TestCase(LinearKind.SddCode)]
    [TestCase(LinearKind.SddPaper)]
    [TestCase(LinearKind.Plain)]
    public void TrainingWithPackedWeightsGivesTheSameBits(LinearKind linear)
    {
        var config = new ModelConfig(65, 64, 2, 4, 2, 176, 16, Residual.Pre, linear);
        var o = Cpu.Ops;
        var unpacked = new OpSet
        {
            Gemm = o.Gemm, Norm = o.Norm, Rope = o.Rope, Attention = o.Attention, Activation = o.Activation, Embedding = o.Embedding,
            Loss = o.Loss, Elementwise = o.Elementwise, Reduction = o.Reduction, Optimizer = o.Optimizer, Random = o.Random, FusedFfn = o.FusedFfn,
        };
        (float[] Losses, float[] Values, float[] M) Train(OpSet ops)
        {
            using var weights = new ModelWeights(Cpu, config, ops);
            weights.Initialize(11);
            using var model = new Model(weights, 3);
            using var adam = new AdamW(weights, new AdamWConfig());
            var losses = new float[4];
            for (var step = 0; step < losses.Length; step++)
            {
                model.Tokens.Upload(Enumerable.Range(0, 48).Select(i => (float)((i * 7 + step) % 65)).ToArray());
                model.Targets.Upload(Enumerable.Range(0, 48).Select(i => (float)((i * 13 + step) % 65)).ToArray());
                weights.ZeroGrad();
                model.ForwardLoss(1f / 48);
                model.Backward();
                adam.Step(3e-3f);
                losses[step] = model.Loss.ToArray()[0];
            }
            Assert.That(weights.Packed, ops.WeightPacking is null ? Is.Empty : Is.Not.Empty);
            return (losses, weights.Values.ToArray(), adam.M.ToArray());
        }
        var plain = Train(unpacked);
        var packed = Train(o);
        Check.BitIdentical(packed.Losses, plain.Losses, "losses");
        Check.BitIdentical(packed.Values, plain.Values, "weights");
        Check.BitIdentical(packed.M, plain.M, "AdamW m");
    }
}
