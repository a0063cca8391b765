using NUnit.Framework;
using SddIlgpu.Training;
using SddIlgpu.Training.Data;

namespace SddIlgpu.Tests.Training;

public sealed class DataTests
{
    string dir = null!;

    [SetUp]
    public void MakeDir() => dir = Directory.CreateTempSubdirectory("sdd-data-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(dir, recursive: true);

    [Test]
    public void CharTokenizerRoundTripsAndSerialises()
    {
        var t = CharTokenizer.FromCorpus("hello world");
        Assert.That(t.VocabSize, Is.EqualTo(8));
        Assert.That(t.Decode(t.Encode("low door"[..3])), Is.EqualTo("low"));
        var back = Tokenizers.FromJson(t.ToJson());
        Assert.That(back.Encode("world"), Is.EqualTo(t.Encode("world")));
        var e = Assert.Throws<ArgumentException>(() => t.Encode("xyz"))!;
        Assert.That(e.Message, Does.Contain("'x'"));
    }

    [Test]
    public void ShakespeareHas65Characters()
    {
        var corpus = TextCorpus.Load(Support.SharedPaths.Shakespeare, "char");
        Assert.That(corpus.Tokenizer.VocabSize, Is.EqualTo(65));
        Assert.That(corpus.Train.Count + corpus.Validation.Count, Is.EqualTo(1_115_394));
        Assert.That(corpus.Train.Count, Is.EqualTo(1_003_854));
    }

    [Test]
    public void ByteAndGpt2TokenizersRoundTrip()
    {
        const string text = "To be, or not to be: that is the question.";
        foreach (var kind in new[] { "byte", "gpt2" })
        {
            var t = Tokenizers.Create(kind, text);
            Assert.That(t.Decode(t.Encode(text)), Is.EqualTo(text), kind);
        }
        Assert.That(Tokenizers.Create("gpt2", text).Encode(text).Length, Is.LessThan(text.Length / 2));
    }

    [Test]
    public void SecondLoadComesFromTheCache()
    {
        var path = Path.Combine(dir, "t.txt");
        File.WriteAllText(path, GeneratedCorpus.Generate(5000));
        var cache = Path.Combine(dir, "cache");
        var first = TextCorpus.Load(path, "char", cache);
        var second = TextCorpus.Load(path, "char", cache);
        Assert.That(first.FromCache, Is.False);
        Assert.That(second.FromCache, Is.True);
        Assert.That(second.Tokens, Is.EqualTo(first.Tokens));
    }

    [Test]
    public void MissingEmptyAndShortDataAreNamed()
    {
        var missing = Assert.Throws<DataException>(() => TextCorpus.Load(Path.Combine(dir, "nope.txt"), "char"))!;
        Assert.That(missing.Message, Does.Contain("does not exist").And.Contain("--data"));
        var empty = Path.Combine(dir, "empty.txt");
        File.WriteAllText(empty, "");
        Assert.That(Assert.Throws<DataException>(() => TextCorpus.Load(empty, "char"))!.Message, Does.Contain("is empty"));
        var shortFile = Path.Combine(dir, "short.txt");
        File.WriteAllText(shortFile, new string('a', 100));
        var corpus = TextCorpus.Load(shortFile, "char");
        var e = Assert.Throws<DataException>(() => corpus.EnsureLongEnough(64))!;
        Assert.That(e.Message, Does.Contain("seq_len + 1 = 65").And.Contain("--seq-len"));
    }

    [Test]
    public void BatchesAreSeededAndPositional()
    {
        var tokens = new ArraySegment<int>([.. Enumerable.Range(0, 1000)]);
        var a = new BatchSampler(tokens, 2, 8, 5, "train");
        var b = new BatchSampler(tokens, 2, 8, 5, "train");
        float[] x1 = new float[16], y1 = new float[16], x2 = new float[16], y2 = new float[16];
        a.Next(x1, y1);
        a.Next(x1, y1);
        b.Position = 2;
        b.Next(x2, y2);
        Assert.That(x2, Is.EqualTo(x1));
        Assert.That(y1[0], Is.EqualTo(x1[0] + 1));
        Assert.That(a.Position, Is.EqualTo(4));
    }

    [Test]
    public void ScheduleWarmsUpThenDecaysToTheFloor()
    {
        Assert.That(LrSchedule.At(0, 100, 1.0, 10, 0.1), Is.EqualTo(0.1).Within(1e-12));
        Assert.That(LrSchedule.At(9, 100, 1.0, 10, 0.1), Is.EqualTo(1.0).Within(1e-12));
        Assert.That(LrSchedule.At(99, 100, 1.0, 10, 0.1), Is.EqualTo(0.1).Within(1e-12));
        var mid = LrSchedule.At(10 + 89 / 2, 100, 1.0, 10, 0.1);
        Assert.That(mid, Is.InRange(0.5, 0.6));
    }

    [Test]
    public void GeneratedCorpusIsDeterministic()
    {
        Assert.That(GeneratedCorpus.Generate(20_000), Is.EqualTo(GeneratedCorpus.Generate(20_000)));
        Assert.That(GeneratedCorpus.Generate(20_000).Length, Is.GreaterThanOrEqualTo(20_000));
    }
}
