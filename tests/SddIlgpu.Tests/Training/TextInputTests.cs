// Issue 10 §1: text and tokenizers are lossless. Each observed case asserts the right value; each kind has a
// further case of its own (an invalid byte on a later line, a file cut inside a character, a BOM, combining
// marks, "<|endoftext|>" beside words, a cache for another text, NaN and fractional ids, ...).
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using NUnit.Framework;
using SddIlgpu.Layers;
using SddIlgpu.Tests.Support;
using SddIlgpu.Training;
using SddIlgpu.Training.Checkpoints;
using SddIlgpu.Training.Data;

namespace SddIlgpu.Tests.Training;

public sealed class TextInputTests
{
    string dir = null!;

    [SetUp]
    public void MakeDir() => dir = Directory.CreateTempSubdirectory("sdd-text-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(dir, recursive: true);

    string Write(string name, byte[] bytes)
    {
        var path = Path.Combine(dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>The Latin-1 file: "le café naïve à la crème brûlée. " ×60, 1,980 bytes.</summary>
    string Latin1File() =>
        Write("latin1.txt", Encoding.Latin1.GetBytes(string.Concat(Enumerable.Repeat("le café naïve à la crème brûlée. ", 60))));

    [TestCase("char")]
    [TestCase("gpt2")]
    public void ALatin1FileIsRefusedWithItsByteOffsetAndIconv(string kind)
    {
        var path = Latin1File();
        Assert.That(new FileInfo(path).Length, Is.EqualTo(1980));
        var e = Assert.Throws<DataException>(() => TextCorpus.Load(path, kind))!;
        Assert.That(e.Message, Does.Contain(path).And.Contain("not valid UTF-8").And.Contain("byte 0xE9 at byte offset 6 (line 1)")
            .And.Contain("iconv -f LATIN1 -t UTF-8").And.Contain("--tokenizer byte"));
    }

    [Test]
    public void InvalidUtf8IsFoundOnItsLineAndAtTheEndOfAFile()
    {
        var later = Write("later.txt", [.. "one\ntwo\nthree "u8, 0xFF, .. " four"u8]);
        Assert.That(() => TextCorpus.Load(later, "char"), Throws.TypeOf<DataException>().With.Message.Contains("byte 0xFF at byte offset 14 (line 3)"));
        var cut = Write("cut.txt", [.. "caf"u8, 0xC3]);
        Assert.That(() => TextCorpus.Load(cut, "char"), Throws.TypeOf<DataException>().With.Message.Contains("byte 0xC3 at byte offset 3"));
        // A UTF-16 surrogate encoded as UTF-8 (CESU-8) and an overlong encoding are not UTF-8 either.
        var cesu = Write("cesu.txt", [.. "ab"u8, 0xED, 0xA0, 0xBD, 0xED, 0xB8, 0x80]);
        Assert.That(() => TextCorpus.Load(cesu, "char"), Throws.TypeOf<DataException>().With.Message.Contains("byte offset 2"));
        var overlong = Write("overlong.txt", [.. "a"u8, 0xC0, 0xAF]);
        Assert.That(() => TextCorpus.Load(overlong, "gpt2"), Throws.TypeOf<DataException>().With.Message.Contains("byte offset 1"));
    }

    [Test]
    public void TheByteTokenizerReadsTheFilesBytesAndDecodesThemExactly()
    {
        var path = Latin1File();
        var bytes = File.ReadAllBytes(path);
        var corpus = TextCorpus.Load(path, "byte");
        Assert.That(corpus.Tokens, Has.Length.EqualTo(1980), "one token per byte (was 2,700: each é became 239,191,189)");
        Assert.That(corpus.Tokens, Is.EqualTo(bytes.Select(b => (int)b).ToArray()));
        Assert.That(corpus.Tokenizer.DecodeBytes(corpus.Tokens), Is.EqualTo(bytes), "bytes out equal bytes in");

        // A BOM and NUL bytes are bytes like any other.
        byte[] raw = [0xEF, 0xBB, 0xBF, 0x7F, (byte)'E', (byte)'L', (byte)'F', 0, 0, 0xFF, .. Enumerable.Range(0, 256).Select(i => (byte)i)];
        var binary = TextCorpus.Load(Write("binary.bin", raw), "byte");
        Assert.That(binary.Tokens, Is.EqualTo(raw.Select(b => (int)b).ToArray()));
    }

    [TestCase("char")]
    [TestCase("gpt2")]
    public void NulBytesAreRefusedForTextTokenizers(string kind)
    {
        byte[] elf = [0x7F, (byte)'E', (byte)'L', (byte)'F', 2, 1, 1, 0, 0, 0, .. "text after the header"u8];
        var path = Write("program", elf);
        var e = Assert.Throws<DataException>(() => TextCorpus.Load(path, kind))!;
        Assert.That(e.Message, Does.Contain(path).And.Contain("NUL byte at byte offset 7").And.Contain("binary").And.Contain("--tokenizer byte"));
        Assert.That(() => TextCorpus.FromText("ab\0c", "memory", kind), Throws.TypeOf<DataException>().With.Message.Contains("NUL character at index 2"));
        if (File.Exists("/usr/bin/ls"))
            Assert.That(() => TextCorpus.Load("/usr/bin/ls", kind), Throws.TypeOf<DataException>().With.Message.Contains("NUL byte"));
    }

    [Test]
    public void ALeadingByteOrderMarkIsDroppedForTextAndKeptAsBytes()
    {
        var path = Write("bom.txt", [0xEF, 0xBB, 0xBF, .. "hi\uFEFFthere\n"u8]);
        var chars = TextCorpus.Load(path, "char");
        Assert.That(chars.Tokenizer.Decode(chars.Tokens), Is.EqualTo("hi\uFEFFthere\n"), "only the leading mark is a signature");
        Assert.That(chars.Tokens, Has.Length.EqualTo(9));
        var gpt2 = TextCorpus.Load(path, "gpt2");
        Assert.That(gpt2.Tokenizer.Decode(gpt2.Tokens), Is.EqualTo("hi\uFEFFthere\n"));
        var bytes = TextCorpus.Load(path, "byte");
        Assert.That(bytes.Tokens[..3], Is.EqualTo(new[] { 0xEF, 0xBB, 0xBF }));
        Assert.That(() => TextCorpus.Load(Write("only-bom.txt", [0xEF, 0xBB, 0xBF]), "char"), Throws.TypeOf<DataException>().With.Message.Contains("is empty"));
    }

    const string EmojiText = "the robot 🤖 smiles 😀 at the cat.\nthe cat 😀 ignores the robot 🤖.\n";

    [Test]
    public void CharactersOutsideTheBmpAreOneTokenAndNamedByTheirCodePoint()
    {
        var t = CharTokenizer.FromCorpus(EmojiText);
        Assert.That(t.Encode("😀"), Has.Length.EqualTo(1));
        Assert.That(t.Encode("🤖😀"), Has.Length.EqualTo(2));
        Assert.That(t.Vocabulary, Does.Contain(new Rune(0x1F600)).And.Contain(new Rune(0x1F916)));
        Assert.That(t.Vocabulary.Count, Is.EqualTo(EmojiText.EnumerateRunes().Distinct().Count()));
        Assert.That(t.Decode(t.Encode(EmojiText)), Is.EqualTo(EmojiText));

        var unknown = Assert.Throws<ArgumentException>(() => t.Encode("a 🎉"))!;
        Assert.That(unknown.Message, Does.Contain("'🎉' (U+1F389)").And.Not.Contain("U+D83C"));
        var lone = Assert.Throws<ArgumentException>(() => t.Encode("a\uD83D b"))!;
        Assert.That(lone.Message, Does.Contain("lone UTF-16 surrogate U+D83D at index 1"));
        Assert.That(() => CharTokenizer.FromCorpus("x\uDE00"), Throws.ArgumentException.With.Message.Contains("U+DE00"));

        // Combining marks and CJK are code points of their own; an invisible character is named by its code alone.
        var marks = CharTokenizer.FromCorpus("e\u0301 漢字");
        Assert.That(marks.VocabSize, Is.EqualTo(5));
        Assert.That(() => marks.Encode("\u200B"), Throws.ArgumentException.With.Message.Contains("Character U+200B at index 0"));
    }

    [Test]
    public void TheCharVocabularyIsStoredLosslessly()
    {
        var t = CharTokenizer.FromCorpus(EmojiText);
        var json = t.ToJson();
        Assert.That(json, Does.Contain("128512").And.Contain("129302"), "😀 and 🤖 stored as their code points");
        Assert.That(json, Does.Not.Contain("\\uFFFD"));
        var back = (CharTokenizer)Tokenizers.FromJson(json);
        Assert.That(back.Vocabulary, Is.EqualTo(t.Vocabulary));
        Assert.That(back.Encode(EmojiText), Is.EqualTo(t.Encode(EmojiText)));
    }

    [Test]
    public void OldCharVocabulariesLoadWithTheirIdsOrFailClearly()
    {
        // The first format: the characters as one JSON string, one token per UTF-16 unit.
        var old = new System.Text.Json.Nodes.JsonObject { ["kind"] = "char", ["chars"] = "\n !,.?abcdefghijklmnopqrstuvwxyzéñ" }.ToJsonString();
        var t = Tokenizers.FromJson(old);
        Assert.That(t.VocabSize, Is.EqualTo(34));
        Assert.That(t.Encode("a b\n"), Is.EqualTo(new[] { 6, 1, 7, 0 }));
        Assert.That(t.Encode("é"), Is.EqualTo(new[] { 32 }));

        // The old writer on an emoji corpus: its lone halves became U+FFFD, so those tokens are lost.
        var halves = string.Concat(EmojiText.Distinct().Order());
        var broken = new System.Text.Json.Nodes.JsonObject { ["kind"] = "char", ["chars"] = halves }.ToJsonString();
        var e = Assert.Throws<InvalidDataException>(() => Tokenizers.FromJson(broken))!;
        Assert.That(e.Message, Does.Contain("older sdd").And.Contain("Train the model again"));
        Assert.That(() => Tokenizers.FromJson("{\"kind\":\"char\",\"chars\":\"ab\\uD83D\"}"),
            Throws.TypeOf<InvalidDataException>().With.Message.Contains("'chars' is not valid text"));
    }

    [Test]
    public void BadTokenizerJsonNamesTheField()
    {
        Assert.That(() => Tokenizers.FromJson("{\"kind\":\"char\",\"code_points\":[97,55357]}"),
            Throws.TypeOf<InvalidDataException>().With.Message.Contains("'code_points' item 1 is 55357"));
        Assert.That(() => Tokenizers.FromJson("{\"kind\":\"char\",\"code_points\":[97,97]}"),
            Throws.TypeOf<InvalidDataException>().With.Message.Contains("appears twice"));
        Assert.That(() => Tokenizers.FromJson("{\"kind\":\"byte\",\"start_token\":256}"),
            Throws.TypeOf<InvalidDataException>().With.Message.Contains("'start_token'"));
        Assert.That(() => Tokenizers.FromJson("{\"kind\":\"char\",\"code_po"), Throws.TypeOf<InvalidDataException>().With.Message.Contains("malformed"));
        Assert.That(() => Tokenizers.FromJson("{\"kind\":\"bpe\"}"), Throws.TypeOf<InvalidDataException>().With.Message.Contains("kind 'bpe' is unknown"));
    }

    [Test]
    public void Gpt2EncodesEndOfTextInAFileAsOrdinaryText()
    {
        var t = new Gpt2Tokenizer();
        // tiktoken's encode_ordinary("<|endoftext|>"): "<", "|", "end", "of", "text", "|", ">".
        Assert.That(t.Encode("<|endoftext|>"), Is.EqualTo(new[] { 27, 91, 437, 1659, 5239, 91, 29 }));
        Assert.That(t.Encode("a<|endoftext|>b"), Does.Not.Contain(Gpt2Tokenizer.EndOfText));
        Assert.That(t.Decode([Gpt2Tokenizer.EndOfText]), Is.EqualTo("<|endoftext|>"), "the special id still decodes");

        var path = Write("eot.txt", Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("Once upon a time.<|endoftext|>The end.\n", 20))));
        var corpus = TextCorpus.Load(path, "gpt2");
        Assert.That(corpus.Tokens, Does.Not.Contain(Gpt2Tokenizer.EndOfText));
        Assert.That(corpus.Tokenizer.Decode(corpus.Tokens), Is.EqualTo(File.ReadAllText(path)));
    }

    [Test]
    public void Gpt2DecodesPartialCharactersToExactBytes()
    {
        var t = new Gpt2Tokenizer();
        var ids = t.Encode("😀");
        Assert.That(ids.Length, Is.GreaterThan(1), "GPT-2 spells 😀 in byte tokens");
        var first = t.DecodeBytes(ids.AsSpan(0, 1));
        Assert.That(first, Is.EqualTo(Encoding.UTF8.GetBytes("😀").Take(first.Length).ToArray()), "a partial character is its exact bytes");
        Assert.That(t.Decode(ids.AsSpan(0, 1)), Is.EqualTo("\uFFFD"), "shown as U+FFFD only as text");
        Assert.That(t.DecodeBytes(ids), Is.EqualTo(Encoding.UTF8.GetBytes("😀")));
    }

    // ---- token cache ----

    string CachedCorpus(out string cache, out TextCorpus first)
    {
        var path = Write("fables.txt", Encoding.UTF8.GetBytes(GeneratedCorpus.Generate(20_000)));
        cache = Path.Combine(dir, "cache");
        first = TextCorpus.Load(path, "char", cache);
        Assert.That(first.FromCache, Is.False);
        Assert.That(File.Exists(first.CachePath), Is.True);
        return path;
    }

    static void AssertReEncoded(string path, string cache, TextCorpus first, string reason)
    {
        var again = TextCorpus.Load(path, "char", cache);
        Assert.That(again.FromCache, Is.False, "a bad cache is not trusted");
        Assert.That(again.Tokens, Is.EqualTo(first.Tokens));
        Assert.That(again.CacheWarning, Does.Contain(again.CachePath).And.Contain(reason).And.Contain("re-encoded"));
        var third = TextCorpus.Load(path, "char", cache);
        Assert.That(third.FromCache, Is.True, "the re-encode rewrote a good cache");
        Assert.That(third.CacheWarning, Is.Null);
    }

    [Test]
    public void ATruncatedCacheIsReEncoded()
    {
        var path = CachedCorpus(out var cache, out var first);
        Assert.That(first.Tokens.Length, Is.GreaterThan(20_000));
        var bytes = File.ReadAllBytes(first.CachePath!);
        File.WriteAllBytes(first.CachePath!, bytes[..400]);
        AssertReEncoded(path, cache, first, "truncated");
        File.WriteAllBytes(first.CachePath!, bytes[..100]);
        AssertReEncoded(path, cache, first, "shorter than its 128-byte header");
    }

    [Test]
    public void OutOfRangeIdsInACacheAreNeverTrusted()
    {
        var path = CachedCorpus(out var cache, out var first);
        var bytes = File.ReadAllBytes(first.CachePath!);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(TokenCache.HeaderBytes + 4 * 1000), 9999);
        File.WriteAllBytes(first.CachePath!, bytes);
        AssertReEncoded(path, cache, first, "checksum");

        // Even with a matching checksum (a buggy writer), an id outside the vocabulary is refused.
        bytes = File.ReadAllBytes(first.CachePath!);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(TokenCache.HeaderBytes + 4 * 1000), -3);
        SHA256.HashData(bytes.AsSpan(TokenCache.HeaderBytes)).CopyTo(bytes.AsSpan(88));
        File.WriteAllBytes(first.CachePath!, bytes);
        AssertReEncoded(path, cache, first, "token id -3 at position 1000, outside the vocabulary");
    }

    [Test]
    public void ACacheOfAnotherFormatOrTextIsReEncoded()
    {
        var path = CachedCorpus(out var cache, out var first);
        // The old cache: bare int32 tokens, no header.
        var raw = new byte[first.Tokens.Length * 4];
        Buffer.BlockCopy(first.Tokens, 0, raw, 0, raw.Length);
        File.WriteAllBytes(first.CachePath!, raw);
        AssertReEncoded(path, cache, first, "not a token cache of this format");

        var reversed = new string(File.ReadAllText(path).Reverse().ToArray());
        var other = TextCorpus.Load(Write("other.txt", Encoding.UTF8.GetBytes(reversed)), "char", cache, first.Tokenizer);
        File.Copy(other.CachePath!, first.CachePath!, overwrite: true);
        AssertReEncoded(path, cache, first, "another text");
    }

    [Test]
    public void TheCacheIsWrittenAtomicallyWithItsHeader()
    {
        _ = CachedCorpus(out var cache, out var first);
        Assert.That(Directory.GetFiles(cache), Is.EqualTo(new[] { first.CachePath }), "no temporary left behind");
        var bytes = File.ReadAllBytes(first.CachePath!);
        Assert.That(bytes[..8], Is.EqualTo("sdd-tok\n"u8.ToArray()));
        Assert.That(BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(16)), Is.EqualTo(first.Tokens.Length));
        Assert.That(bytes.Length, Is.EqualTo(TokenCache.HeaderBytes + 4 * first.Tokens.Length));
    }

    // ---- ids entering the model ----

    [TestCase("cpu")]
    [TestCase("ilgpu-cpu")]
    public void OutOfRangeIdsAreRefusedBeforeTheModel(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        var config = new ModelConfig(11, DModel: 8, NLayer: 1, NHead: 2, NKvHead: 1, FfnHidden: 16, SeqLen: 4, Residual: Residual.Post, Linear: LinearKind.SddCode);
        using var weights = new ModelWeights(device, config);
        weights.Initialize(1);
        using var model = new Model(weights, 1);
        float[] good = [0, 3, 10, 5];
        foreach (var (bad, what) in new[] { (11f, "11"), (-1f, "-1"), (float.NaN, "NaN"), (2.5f, "2.5") })
        {
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => model.Upload([1, bad, 2, 3], good))!;
            Assert.That(e.Message, Does.Contain($"token id {what} at position 1").And.Contain("[0, 11)"));
            Assert.That(() => model.Upload(good, [1, 2, 3, bad]), Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains($"target id {what} at position 3"));
        }
        model.Upload(good, good);
        model.ForwardLoss(0.25f);
        Assert.That(float.IsFinite(model.Loss.ToArray()[0]), Is.True);
    }

    [Test]
    public void ACorpusNeverHoldsAnIdOutsideItsVocabulary()
    {
        var corpus = TextCorpus.FromText("abc abc\n", "mem", "byte");
        Assert.That(corpus.Tokens.All(t => t is >= 0 and < 256), Is.True);
        var chars = TextCorpus.FromText("abc abc\n", "mem", "char");
        Assert.That(() => TextCorpus.FromText("abcz", "mem", "char", tokenizer: chars.Tokenizer),
            Throws.TypeOf<DataException>().With.Message.Contains("'z' (U+007A)"));
    }

    // ---- the empty prompt ----

    [Test]
    public void AnEmptyPromptStartsFromATokenSeenInTraining()
    {
        var noNewline = TextCorpus.FromText(string.Concat(Enumerable.Repeat("abc ", 50)), "mem", "byte");
        Assert.That(noNewline.StartToken, Is.EqualTo('a'), "not 0 (NUL), never seen");
        Assert.That(TextCorpus.FromText("abc\nabc\n", "mem", "byte").StartToken, Is.EqualTo('\n'));
        var chars = TextCorpus.FromText("xy\nyx\n", "mem", "char");
        Assert.That(chars.StartToken, Is.EqualTo(((CharTokenizer)chars.Tokenizer).IdOf(new Rune('\n'))));
        Assert.That(TextCorpus.FromText("zyx zyx", "mem", "char").StartToken, Is.EqualTo(3), "the first training token, 'z'");
        Assert.That(TextCorpus.FromText("One.\nTwo.\n", "mem", "gpt2").StartToken, Is.EqualTo(198));
        Assert.That(TextCorpus.FromText("One two", "mem", "gpt2").StartToken, Is.EqualTo(new Gpt2Tokenizer().Encode("One").Single()), "the first token, 'One'");
        var latin1 = TextCorpus.Load(Latin1File(), "byte");
        Assert.That(latin1.StartToken, Is.EqualTo('l'), "the Latin-1 file has no newline; its first byte is 'l'");
    }

    [Test]
    public void TheSamplerFeedsTheStartTokenAndTheCheckpointKeepsIt()
    {
        var device = TestDevices.Get("cpu");
        var corpus = TextCorpus.FromText(string.Concat(Enumerable.Repeat("abcd efgh ", 40)), "mem", "byte");
        var config = new ModelConfig(256, DModel: 8, NLayer: 1, NHead: 2, NKvHead: 1, FfnHidden: 16, SeqLen: 8, Residual: Residual.Post, Linear: LinearKind.SddCode);
        var train = new TrainConfig { Steps = 1, Batch = 2, Warmup = 0, EvalEvery = 0, EvalBatches = 1, Seed = 3, CheckpointEvery = 0 };
        using var trainer = Trainer.Create(device, config, train, corpus, Path.Combine(dir, "run"), new TrainerOptions { WritePlot = false });
        trainer.Run();
        var (tokenizer, start) = TokenizerJson.Read(Checkpoint.ReadState(trainer.CheckpointPath).TokenizerJson);
        Assert.That(start, Is.EqualTo('a'));
        using var sampler = new TextSampler(trainer.Weights);
        var fromEmpty = sampler.Continue(tokenizer, "", 12, 1.0, 0, 5, start);
        Assert.That(fromEmpty, Is.EqualTo(sampler.Continue(tokenizer, "a", 12, 1.0, 0, 5)), "an empty prompt is the start token as context");
        Assert.That(sampler.Continue(tokenizer, "", 12, 1.0, 0, 5), Is.EqualTo(sampler.Continue(tokenizer, "\n", 12, 1.0, 0, 5)),
            "without a recorded start token (older checkpoints): newline");
        Assert.That(trainer.Sample("", 12, 5), Is.EqualTo(tokenizer.Decode(sampler.Continue(tokenizer, "a", 12, train.Temperature, train.TopK, 5))),
            "the trainer's samples start from the same token");
    }
}
