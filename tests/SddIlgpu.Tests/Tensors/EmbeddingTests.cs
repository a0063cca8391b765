// Token embedding: gather forward (exact), scatter-add backward into dTable against a float64 reference and
// finite differences, with repeated tokens, accumulation into existing values, and bit-identical repeats.
using NUnit.Framework;
using SddIlgpu.Tensors;
using SddIlgpu.Tests.Support;

namespace SddIlgpu.Tests.Tensors;

[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.All))]
public sealed class EmbeddingTests(string deviceName)
{
    Device device = null!;

    [OneTimeSetUp]
    public void Open() => device = TestDevices.Get(deviceName);

    static float[] Tokens(int n, int vocab, int seed)
    {
        var r = new System.Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)r.Next(vocab)).ToArray();
    }

    static double[] Reference(float[] tokens, double[] table, int width)
    {
        var y = new double[tokens.Length * width];
        for (var n = 0; n < tokens.Length; n++)
            Array.Copy(table, (int)tokens[n] * width, y, n * width, width);
        return y;
    }

    static double[] ReferenceBackward(float[] tokens, double[] dY, int vocab, int width)
    {
        var dTable = new double[vocab * width];
        for (var n = 0; n < tokens.Length; n++)
            for (var c = 0; c < width; c++)
                dTable[(int)tokens[n] * width + c] += dY[n * width + c];
        return dTable;
    }

    [TestCase(1, 1, 1)]
    [TestCase(7, 5, 33)]
    [TestCase(65, 7, 65)]
    public void ForwardGathersAndBackwardAccumulates(int count, int vocab, int width)
    {
        var tokens = Tokens(count, vocab, count);
        var table = GradCheck.RandomExact(vocab * width, 1);
        var dY = GradCheck.RandomExact(count * width, 2);
        var dTableBefore = GradCheck.RandomExact(vocab * width, 3);
        using var arena = device.Allocate(count + 2L * vocab * width + 2L * count * width, "embedding");
        var tTokens = arena.Take(count);
        var tTable = arena.Take((vocab, width));
        var tdTable = arena.Take((vocab, width));
        var ty = arena.Take((count, width));
        var tdY = arena.Take((count, width));
        tTokens.Upload(tokens);
        tTable.Upload(GradCheck.Narrow(table));
        tdTable.Upload(GradCheck.Narrow(dTableBefore));
        tdY.Upload(GradCheck.Narrow(dY));

        device.Ops.Embedding.Forward(tTokens, tTable, ty);
        Check.BitIdentical(ty.ToArray(), GradCheck.Narrow(Reference(tokens, table, width)), "y");

        device.Ops.Embedding.Backward(tTokens, tdY, tdTable);
        var expected = ReferenceBackward(tokens, dY, vocab, width).Select((d, i) => d + dTableBefore[i]).ToArray();
        Check.Close(tdTable.ToArray(), expected, 1e-5, 1e-5, "dTable += ");
    }

    [Test]
    public void ReferenceBackwardMatchesFiniteDifferences()
    {
        float[] tokens = [2, 0, 2, 1];
        var table = GradCheck.RandomExact(3 * 2, 4);
        var dY = GradCheck.RandomExact(4 * 2, 5);
        GradCheck.Matches(ReferenceBackward(tokens, dY, 3, 2), table,
            () => GradCheck.Dot(Reference(tokens, table, 2), dY), "dTable");
    }

    [Test]
    public void BackwardRepeatsBitForBit()
    {
        const int count = 65, vocab = 3, width = 33;
        using var arena = device.Allocate(count + vocab * width + count * width, "embedding");
        var tTokens = arena.Take(count);
        var tdTable = arena.Take((vocab, width));
        var tdY = arena.Take((count, width));
        tTokens.Upload(Tokens(count, vocab, 6));
        tdY.Upload(Check.Random(count * width, 7, 100f));
        device.Ops.Embedding.Backward(tTokens, tdY, tdTable);
        var first = tdTable.ToArray();
        device.Ops.Elementwise.Fill(tdTable, 0f);
        device.Ops.Embedding.Backward(tTokens, tdY, tdTable);
        Check.BitIdentical(tdTable.ToArray(), first, "dTable");
    }

    /// <summary>
    /// Any number of token ranges gives the float32 sums in position order, bit for bit: the host adds dY rows to
    /// the starting dTable one position at a time and the device must match exactly.
    /// </summary>
    [TestCase(1)]
    [TestCase(2)]
    [TestCase(3)]
    [TestCase(7)]
    public void BackwardSumsInPositionOrderForAnyTokenRanges(int ranges)
    {
        if (device.Kind == BackendKind.Cpu)
            Assert.Ignore("The managed cpu path has its own embedding backward (ManagedOpsTests).");
        const int count = 130, vocab = 7, width = 33;
        var tokens = Tokens(count, vocab, 8);
        var dY = Check.Random(count * width, 9, 10f);
        var before = Check.Random(vocab * width, 10);
        var expected = (float[])before.Clone();
        for (var n = 0; n < count; n++)
            for (var c = 0; c < width; c++)
                expected[(int)tokens[n] * width + c] += dY[n * width + c];
        using var arena = device.Allocate(count + vocab * width + count * width, "embedding");
        var tTokens = arena.Take(count);
        var tdTable = arena.Take((vocab, width));
        var tdY = arena.Take((count, width));
        tTokens.Upload(tokens);
        tdY.Upload(dY);
        tdTable.Upload(before);
        var embedding = device.Kernels.Embedding;
        var keep = embedding.TokenRanges;
        try
        {
            embedding.TokenRanges = ranges;
            embedding.Backward(tTokens, tdY, tdTable);
        }
        finally
        {
            embedding.TokenRanges = keep;
        }
        Check.BitIdentical(tdTable.ToArray(), expected, $"dTable with {ranges} token ranges");
    }
}
