// Issue 10 §1 property tests (CsCheck): over random Unicode text with characters outside the BMP, combining
// marks, CRLF, byte order marks and NUL, every tokenizer's decode(encode(text)) is the text, a tokenizer saved
// to JSON and loaded again encodes identically, and the byte tokenizer is the identity on any bytes.
using System.Text;
using CsCheck;
using Microsoft.ML.Tokenizers;
using NUnit.Framework;
using SddIlgpu.Training.Data;

namespace SddIlgpu.Tests.Training;

public sealed class TokenizerPropertyTests
{
    const int Iterations = 300;

    static Gen<string> Scalar(int lo, int hi) => Gen.Int[lo, hi].Select(v => char.ConvertFromUtf32(v));

    /// <summary>Pieces of text a tokenizer must survive, mixed at random.</summary>
    static readonly Gen<string> Piece = Gen.Frequency(
        (6, Scalar(0x20, 0x7E)),
        (2, Scalar(0xA0, 0x24F)),
        (2, Scalar(0x300, 0x36F)),
        (1, Scalar(0x4E00, 0x9FFF)),
        (2, Scalar(0x1F300, 0x1FAFF)),
        (1, Scalar(0x10000, 0x10FFFF)),
        (1, Gen.OneOf("\r\n", "\n", "\r", "\t", "  ")),
        (1, Gen.OneOf("\uFEFF", "\0", "<|endoftext|>", "é", "e\u0301", "😀", "🤖", "👩‍👩‍👧")));

    static readonly Gen<string> Text = Piece.Array[1, 40].Select(string.Concat);

    static Lazy<Tokenizer> Reference { get; } = new(() => TiktokenTokenizer.CreateForModel("gpt2"));

    [Test]
    public void CharTokenizerRoundTripsAndReloadsIdentically() => Text.Sample(text =>
    {
        var t = CharTokenizer.FromCorpus(text);
        var ids = t.Encode(text);
        Assert.That(ids, Has.Length.EqualTo(text.EnumerateRunes().Count()), "one token per code point");
        Assert.That(t.VocabSize, Is.EqualTo(text.EnumerateRunes().Distinct().Count()));
        Assert.That(t.Decode(ids), Is.EqualTo(text));
        Assert.That(Tokenizers.FromJson(t.ToJson()).Encode(text), Is.EqualTo(ids));
        Assert.That(t.EncodeUtf8(Encoding.UTF8.GetBytes(text)), Is.EqualTo(ids), "sdd prepare's byte path gives the same ids");
    }, iter: Iterations);

    [Test]
    public void CharTokenizerNamesTheByteOfACharacterOutsideItsVocabulary()
    {
        var t = CharTokenizer.FromCorpus("abc");
        Assert.That(Assert.Throws<ArgumentException>(() => t.EncodeUtf8(Encoding.UTF8.GetBytes("ab😀c")))!.Message,
            Does.Contain("U+1F600").And.Contain("at byte 2"));
        Assert.That(Assert.Throws<ArgumentException>(() => t.EncodeUtf8(Encoding.UTF8.GetBytes("abé")))!.Message,
            Does.Contain("U+00E9").And.Contain("at byte 2"));
        Assert.That(Assert.Throws<ArgumentException>(() => t.EncodeUtf8([0x61, 0xE9, 0x62]))!.Message, Does.Contain("not valid UTF-8 at byte 1"));
    }

    [Test]
    public void CharTokenizerDecodesAnyIdsToWellFormedText() =>
        Gen.Select(Text, Gen.Int[0, 1000].Array[0, 50]).Sample((text, raw) =>
        {
            var t = CharTokenizer.FromCorpus(text);
            var decoded = t.Decode([.. raw.Select(r => r % t.VocabSize)]);
            Assert.DoesNotThrow(() => Tokenizers.RequireWellFormed(decoded), "a sample never holds a lone surrogate");
        }, iter: Iterations);

    [Test]
    public void ByteTokenizerIsTheUtf8OfTextAndTheIdentityOnBytes()
    {
        var t = new ByteTokenizer();
        Text.Sample(text =>
        {
            var utf8 = Encoding.UTF8.GetBytes(text);
            var ids = t.Encode(text);
            Assert.That(ids, Is.EqualTo(utf8.Select(b => (int)b).ToArray()));
            Assert.That(t.Decode(ids), Is.EqualTo(text));
            Assert.That(Tokenizers.FromJson(t.ToJson()).Encode(text), Is.EqualTo(ids));
        }, iter: Iterations);
        Gen.Byte.Array[0, 200].Sample(bytes =>
            Assert.That(t.DecodeBytes(ByteTokenizer.Encode(bytes)), Is.EqualTo(bytes)), iter: Iterations);
    }

    [Test]
    public void Gpt2RoundTripsEncodesSpecialTextAsOrdinaryAndMatchesTheReference()
    {
        var t = new Gpt2Tokenizer();
        var reloaded = Tokenizers.FromJson(t.ToJson());
        Text.Sample(text =>
        {
            var ids = t.Encode(text);
            Assert.That(t.Decode(ids), Is.EqualTo(text));
            Assert.That(Encoding.UTF8.GetString(t.DecodeBytes(ids)), Is.EqualTo(text));
            Assert.That(ids, Does.Not.Contain(Gpt2Tokenizer.EndOfText));
            Assert.That(reloaded.Encode(text), Is.EqualTo(ids));
            // Away from special-token text, the ordinary encoder is exactly Microsoft.ML.Tokenizers' GPT-2.
            if (!text.Contains(Gpt2Tokenizer.EndOfTextText, StringComparison.Ordinal))
                Assert.That(ids, Is.EqualTo(Reference.Value.EncodeToIds(text).ToArray()));
        }, iter: Iterations);
    }

    [Test]
    public void TextFilesRoundTripOrAreRefusedForNul()
    {
        var dir = Directory.CreateTempSubdirectory("sdd-prop-").FullName;
        try
        {
            var n = 0;
            Text.Sample(text =>
            {
                var path = Path.Combine(dir, $"t{Interlocked.Increment(ref n)}.txt");
                File.WriteAllBytes(path, Encoding.UTF8.GetBytes(text));
                var expected = text.StartsWith('\uFEFF') ? text[1..] : text;
                if (text.Contains('\0', StringComparison.Ordinal))
                    Assert.That(() => TextCorpus.Load(path, "char"), Throws.TypeOf<DataException>().With.Message.Contains("NUL byte"));
                else if (expected.Length > 0)
                {
                    var corpus = TextCorpus.Load(path, "char");
                    Assert.That(corpus.Tokenizer.Decode(corpus.Tokens), Is.EqualTo(expected));
                }
                var bytes = TextCorpus.Load(path, "byte");
                Assert.That(bytes.Tokens, Is.EqualTo(File.ReadAllBytes(path).Select(b => (int)b).ToArray()), "the byte tokenizer keeps every byte");
            }, iter: 100, threads: 1);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>A mutated cache file is either valid or re-encoded: the corpus is always the right one, nothing escapes.</summary>
    [Test]
    public void AMutatedTokenCacheNeverGivesAWrongCorpus()
    {
        var dir = Directory.CreateTempSubdirectory("sdd-mut-").FullName;
        try
        {
            var path = Path.Combine(dir, "t.txt");
            File.WriteAllText(path, "the 😀 robot 🤖 and the cat\r\n" + SddIlgpu.Training.Data.GeneratedCorpus.Generate(2_000));
            var cache = Path.Combine(dir, "cache");
            var first = TextCorpus.Load(path, "char", cache);
            var pristine = File.ReadAllBytes(first.CachePath!);
            var edit = Gen.Select(Gen.Int[0, pristine.Length - 1], Gen.Byte, Gen.Int[0, 3]);
            edit.Sample((at, value, how) =>
            {
                var bytes = how switch
                {
                    0 => pristine[..at],
                    1 => [.. pristine, value],
                    _ => [.. pristine],
                };
                if (how >= 2)
                    bytes[at] = bytes[at] == value ? (byte)~value : value;
                File.WriteAllBytes(first.CachePath!, bytes);
                var again = TextCorpus.Load(path, "char", cache);
                Assert.That(again.Tokens, Is.EqualTo(first.Tokens));
                Assert.That(again.FromCache, Is.False);
                Assert.That(again.CacheWarning, Is.Not.Null);
            }, iter: 100, threads: 1);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>A mutated tokenizer JSON either reads or is an InvalidDataException naming the problem.</summary>
    [Test]
    public void AMutatedTokenizerJsonIsReadOrRefusedClearly()
    {
        string[] valid =
        [
            TokenizerJson.Write(CharTokenizer.FromCorpus("ab\n😀🤖é"), 2),
            TokenizerJson.Write(new ByteTokenizer(), 10),
            TokenizerJson.Write(new Gpt2Tokenizer()),
            "{\"kind\":\"char\",\"chars\":\"\\n ab\"}",
        ];
        const string alphabet = "{}[]\":,0123456789-.eE\\u ackhrs_tnbyFD8";
        var edit = Gen.Select(Gen.Int[0, valid.Length - 1], Gen.Select(Gen.Int[0, 1000], Gen.Int[0, 2], Gen.Char[alphabet]).Array[1, 4]);
        edit.Sample((which, edits) =>
        {
            var json = new StringBuilder(valid[which]);
            foreach (var (at, how, c) in edits)
            {
                var i = at % (json.Length + 1);
                if (how == 0 && i < json.Length)
                    json.Remove(i, 1);
                else if (how == 1)
                    json.Insert(i, c);
                else if (i < json.Length)
                    json[i] = c;
            }
            try
            {
                var (tokenizer, start) = TokenizerJson.Read(json.ToString());
                Assert.That(start is null || (uint)start < (uint)tokenizer.VocabSize, Is.True);
            }
            catch (InvalidDataException e)
            {
                Assert.That(e.Message, Does.Contain("tokenizer").And.Not.Contain("\n"), "one line naming the problem");
            }
        }, iter: 2000);
    }
}
