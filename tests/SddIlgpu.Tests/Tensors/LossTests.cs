// Fused softmax cross-entropy against a float64 reference (log-sum-exp in double): per-row losses, their mean,
// dLogits = (softmax − onehot)·gradScale (aliasing logits), finite differences of the mean loss, logits of
// magnitude 100, and bit-identical repeats.
using NUnit.Framework;
using SddIlgpu.Tensors;
using SddIlgpu.Tests.Support;

namespace SddIlgpu.Tests.Tensors;

[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.All))]
public sealed class LossTests(string deviceName)
{
    Device device = null!;

    [OneTimeSetUp]
    public void Open() => device = TestDevices.Wide(deviceName); // launches 256-thread groups

    static (double[] Losses, double Mean, double[] DLogits) Reference(double[] logits, float[] targets, int vocab, double gradScale)
    {
        var rows = targets.Length;
        var losses = new double[rows];
        var dLogits = new double[logits.Length];
        for (var n = 0; n < rows; n++)
        {
            var row = logits.AsSpan(n * vocab, vocab);
            var max = row.ToArray().Max();
            var sum = 0.0;
            foreach (var l in row)
                sum += Math.Exp(l - max);
            var t = (int)targets[n];
            losses[n] = max + Math.Log(sum) - row[t];
            for (var i = 0; i < vocab; i++)
                dLogits[n * vocab + i] = (Math.Exp(row[i] - max) / sum - (i == t ? 1 : 0)) * gradScale;
        }
        return (losses, losses.Average(), dLogits);
    }

    static float[] Targets(int rows, int vocab, int seed)
    {
        var r = new System.Random(seed);
        return Enumerable.Range(0, rows).Select(_ => (float)r.Next(vocab)).ToArray();
    }

    [TestCase(1, 1, 1f)]
    [TestCase(7, 33, 1f)]
    [TestCase(65, 7, 1f)]
    [TestCase(33, 65, 100f)]
    public void MatchesFloat64WithDLogitsAliasingLogits(int rows, int vocab, float magnitude)
    {
        var logits = GradCheck.RandomExact(rows * vocab, rows + vocab, magnitude);
        var targets = Targets(rows, vocab, 1);
        var gradScale = 1.0 / rows;
        using var arena = device.Allocate(rows * vocab + 2L * rows + 1, "loss");
        var tLogits = arena.Take((rows, vocab));
        var tTargets = arena.Take(rows);
        var tLosses = arena.Take(rows);
        var tLoss = arena.Take(1);
        tLogits.Upload(GradCheck.Narrow(logits));
        tTargets.Upload(targets);

        device.Ops.Loss.CrossEntropy(tLogits, tTargets, tLosses, tLoss, tLogits, (float)gradScale);

        var (losses, mean, dLogits) = Reference(logits, targets, vocab, gradScale);
        // Row losses carry the float32 rounding of max + log Σ exp, relative to the logits' magnitude.
        Check.Close(tLosses.ToArray(), losses, 2e-6 * magnitude, 1e-5, "losses");
        Check.Close(tLoss.ToArray(), [mean], 2e-6 * magnitude, 1e-5, "mean loss");
        Check.Close(tLogits.ToArray(), dLogits, 1e-6, 1e-4, "dLogits (in place)");
        Assert.That(tLosses.ToArray().All(float.IsFinite), "finite losses");
    }

    /// <summary>The fused kernel at the GPU group (teams of 1 to 256 lanes) and at 2 threads, on every kernel device.</summary>
    [TestCase(256)]
    [TestCase(2)]
    public void CooperativeGroupSizesMatchFloat64AndRepeat(int threads)
    {
        if (device.Kind == BackendKind.Cpu)
            Assert.Ignore("The managed cpu path has its own cross-entropy (ManagedOpsTests).");
        using (CooperativeLaunch.Threads(device, threads))
        {
            MatchesFloat64WithDLogitsAliasingLogits(7, 33, 1f);
            MatchesFloat64WithDLogitsAliasingLogits(65, 7, 1f);
            MatchesFloat64WithDLogitsAliasingLogits(3, 2500, 100f);
            RepeatsBitForBit();
        }
    }

    [Test]
    public void ReferenceGradientMatchesFiniteDifferencesOfTheMean()
    {
        const int rows = 3, vocab = 4;
        var logits = GradCheck.RandomExact(rows * vocab, 2, 3f);
        var targets = Targets(rows, vocab, 3);
        GradCheck.Matches(Reference(logits, targets, vocab, 1.0 / rows).DLogits, logits,
            () => Reference(logits, targets, vocab, 1).Mean, "dLogits");
    }

    [Test]
    public void RepeatsBitForBit()
    {
        const int rows = 65, vocab = 33;
        using var arena = device.Allocate(2L * rows * vocab + 2L * rows + 1, "loss");
        var tLogits = arena.Take((rows, vocab));
        var tdLogits = arena.Take((rows, vocab));
        var tTargets = arena.Take(rows);
        var tLosses = arena.Take(rows);
        var tLoss = arena.Take(1);
        tLogits.Upload(Check.Random(rows * vocab, 4, 10f));
        tTargets.Upload(Targets(rows, vocab, 5));
        device.Ops.Loss.CrossEntropy(tLogits, tTargets, tLosses, tLoss, tdLogits, 0.5f);
        var (loss, dLogits) = (tLoss.ToArray(), tdLogits.ToArray());
        device.Ops.Loss.CrossEntropy(tLogits, tTargets, tLosses, tLoss, tdLogits, 0.5f);
        Check.BitIdentical(tLoss.ToArray(), loss, "loss");
        Check.BitIdentical(tdLogits.ToArray(), dLogits, "dLogits");
    }
}
