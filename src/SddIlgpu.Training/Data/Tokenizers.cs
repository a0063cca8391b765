// Tokenizers: character-level over Unicode code points (vocabulary from the corpus, as nanoGPT's
// shakespeare_char), byte-level over raw bytes, and GPT-2 BPE through Microsoft.ML.Tokenizers. Each is
// lossless: Decode(Encode(text)) == text for every text it accepts. TokenizerJson (de)serialises them.
using System.Buffers;
using System.Globalization;
using System.Text;

namespace SddIlgpu.Training.Data;

/// <summary>Turns text into token ids and back, losslessly.</summary>
public interface ITokenizer
{
    /// <summary>"char", "byte" or "gpt2".</summary>
    string Kind { get; }

    /// <summary>Number of token ids (V): every id is in [0, V).</summary>
    int VocabSize { get; }

    /// <summary>
    /// Token ids of <paramref name="text"/>. Throws <see cref="ArgumentException"/> for text that is not valid
    /// Unicode (a lone UTF-16 surrogate) and, for the character tokenizer, for a character outside its vocabulary.
    /// </summary>
    int[] Encode(string text);

    /// <summary>
    /// Text of <paramref name="ids"/>. Lossless wherever the ids spell whole UTF-8 characters; where they do not
    /// (a byte or GPT-2 sample cut inside a character, a Latin-1 byte) each invalid sequence shows as U+FFFD:
    /// use <see cref="DecodeBytes"/> for the exact bytes. Throws <see cref="ArgumentOutOfRangeException"/> for an id outside [0, V).
    /// </summary>
    string Decode(ReadOnlySpan<int> ids);

    /// <summary>The exact bytes <paramref name="ids"/> stand for (UTF-8 for the character tokenizer).</summary>
    byte[] DecodeBytes(ReadOnlySpan<int> ids);

    /// <summary>JSON that <see cref="Tokenizers.FromJson"/> turns back into an equal tokenizer (see <see cref="TokenizerJson"/>).</summary>
    string ToJson();
}

public static class Tokenizers
{
    public static readonly string[] Kinds = ["char", "byte", "gpt2"];

    /// <summary>Builds a tokenizer of the given kind; the char tokenizer takes its vocabulary from <paramref name="corpus"/>.</summary>
    public static ITokenizer Create(string kind, string corpus) => kind switch
    {
        "char" => CharTokenizer.FromCorpus(corpus),
        "byte" => new ByteTokenizer(),
        "gpt2" => new Gpt2Tokenizer(),
        _ => throw new ArgumentException($"Unknown tokenizer '{kind}'. Use one of: {string.Join(", ", Kinds)}."),
    };

    /// <summary>The tokenizer of <see cref="ITokenizer.ToJson"/> (or of a checkpoint's "tokenizer" metadata).</summary>
    public static ITokenizer FromJson(string json) => TokenizerJson.Read(json).Tokenizer;

    /// <summary>The id of "\n" when it is a single token of <paramref name="tokenizer"/>'s vocabulary, else null.</summary>
    public static int? Newline(ITokenizer tokenizer) => tokenizer switch
    {
        CharTokenizer c => c.IdOf(new Rune('\n')),
        _ => tokenizer.Encode("\n") is [var id] ? id : null,
    };

    /// <summary>Names a character as users and the Unicode standard do: '😀' (U+1F600), or U+000A alone for invisible ones.</summary>
    public static string Name(Rune rune)
    {
        var code = $"U+{rune.Value:X4}";
        return Rune.GetUnicodeCategory(rune) is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate
            or UnicodeCategory.PrivateUse or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator
            or UnicodeCategory.SpaceSeparator or UnicodeCategory.NonSpacingMark or UnicodeCategory.EnclosingMark
            or UnicodeCategory.OtherNotAssigned
            ? code
            : $"'{rune}' ({code})";
    }

    /// <summary>Throws <see cref="ArgumentException"/> at the first lone UTF-16 surrogate (text that is not valid Unicode).</summary>
    public static void RequireWellFormed(string text)
    {
        var span = text.AsSpan();
        var i = span.IndexOfAnyInRange('\uD800', '\uDFFF');
        while (i >= 0)
        {
            if (Rune.DecodeFromUtf16(span[i..], out _, out var used) != OperationStatus.Done)
                throw new ArgumentException(
                    $"The text has a lone UTF-16 surrogate U+{(int)span[i]:X4} at index {i} (half of a character outside the Basic Multilingual Plane): it is not valid Unicode.");
            i += used;
            var next = span[i..].IndexOfAnyInRange('\uD800', '\uDFFF');
            i = next < 0 ? -1 : i + next;
        }
    }

    /// <summary>Strict UTF-8 of well-formed text (a lone surrogate is an <see cref="ArgumentException"/>, never U+FFFD).</summary>
    internal static byte[] Utf8(string text)
    {
        RequireWellFormed(text);
        return Encoding.UTF8.GetBytes(text);
    }

    internal static ArgumentOutOfRangeException BadId(int id, int vocab) =>
        new(nameof(id), $"Token id {id} is outside this tokenizer's vocabulary [0, {vocab}).");
}

/// <summary>
/// One token per distinct Unicode code point (<see cref="Rune"/>) of the corpus, in code point order. A character
/// outside the Basic Multilingual Plane (😀, U+1F600) is one token, never two UTF-16 halves.
/// </summary>
public sealed class CharTokenizer : ITokenizer
{
    readonly Rune[] vocabulary;
    readonly Dictionary<Rune, int> index = [];

    /// <summary>The id of every BMP character that is not a surrogate, -1 where it has none: one load per char.</summary>
    readonly int[] bmp = new int[0x10000];

    /// <summary>A tokenizer whose id i is <paramref name="vocabulary"/>[i]; the characters must be distinct.</summary>
    public CharTokenizer(IEnumerable<Rune> vocabulary)
    {
        this.vocabulary = [.. vocabulary];
        if (this.vocabulary.Length == 0)
            throw new ArgumentException("A character tokenizer needs at least one character.");
        for (var i = 0; i < this.vocabulary.Length; i++)
            if (!index.TryAdd(this.vocabulary[i], i))
                throw new ArgumentException($"Character {Tokenizers.Name(this.vocabulary[i])} appears twice in the vocabulary (ids {index[this.vocabulary[i]]} and {i}).");
        Array.Fill(bmp, -1);
        foreach (var (rune, id) in index)
            if (rune.IsBmp)
                bmp[rune.Value] = id;
    }

    /// <summary>The distinct characters of <paramref name="corpus"/>, sorted by code point. A lone surrogate is an <see cref="ArgumentException"/>.</summary>
    public static CharTokenizer FromCorpus(string corpus)
    {
        Tokenizers.RequireWellFormed(corpus);
        var set = new HashSet<Rune>();
        foreach (var r in corpus.EnumerateRunes())
            set.Add(r);
        return new CharTokenizer(set.Order());
    }

    public string Kind => "char";
    public int VocabSize => vocabulary.Length;

    /// <summary>The characters, id order.</summary>
    public IReadOnlyList<Rune> Vocabulary => vocabulary;

    /// <summary>The id of <paramref name="rune"/>, or null when it is not in the vocabulary.</summary>
    public int? IdOf(Rune rune) => index.TryGetValue(rune, out var id) ? id : null;

    public int[] Encode(string text)
    {
        var ids = new int[text.Length]; // at most one id per UTF-16 unit
        var n = 0;
        var span = text.AsSpan();
        for (var i = 0; i < span.Length;)
        {
            var c = span[i];
            if (!char.IsSurrogate(c) && bmp[c] is var known and >= 0)
            {
                ids[n++] = known;
                i++;
                continue;
            }
            if (Rune.DecodeFromUtf16(span[i..], out var rune, out var used) != OperationStatus.Done)
                Tokenizers.RequireWellFormed(text);
            if (!index.TryGetValue(rune, out var id))
                throw new ArgumentException(
                    $"Character {Tokenizers.Name(rune)} at index {i} is not in this model's {vocabulary.Length}-character vocabulary (the characters of its training text).");
            ids[n++] = id;
            i += used;
        }
        return n == ids.Length ? ids : ids[..n];
    }

    /// <summary>
    /// The ids of UTF-8 text, read straight from its bytes (no string is made): the same ids as
    /// <see cref="Encode"/> of the decoded text. <c>sdd prepare</c> uses it after validating the bytes.
    /// </summary>
    /// <exception cref="ArgumentException">The bytes are not valid UTF-8, or hold a character outside the vocabulary (named with its byte offset).</exception>
    public int[] EncodeUtf8(ReadOnlySpan<byte> utf8)
    {
        var ids = new int[utf8.Length]; // at most one id per byte
        var n = 0;
        for (var i = 0; i < utf8.Length;)
        {
            var b = utf8[i];
            if (b < 0x80 && bmp[b] is var known and >= 0)
            {
                ids[n++] = known;
                i++;
                continue;
            }
            if (Rune.DecodeFromUtf8(utf8[i..], out var rune, out var used) != OperationStatus.Done)
                throw new ArgumentException($"The text is not valid UTF-8 at byte {i}.");
            var id = rune.IsBmp ? bmp[rune.Value] : index.GetValueOrDefault(rune, -1);
            if (id < 0)
                throw new ArgumentException(
                    $"Character {Tokenizers.Name(rune)} at byte {i} is not in this model's {vocabulary.Length}-character vocabulary (the characters of its training text).");
            ids[n++] = id;
            i += used;
        }
        return n == ids.Length ? ids : ids[..n];
    }

    public string Decode(ReadOnlySpan<int> ids)
    {
        var sb = new StringBuilder(ids.Length);
        Span<char> pair = stackalloc char[2];
        foreach (var id in ids)
        {
            if ((uint)id >= (uint)vocabulary.Length)
                throw Tokenizers.BadId(id, vocabulary.Length);
            sb.Append(pair[..vocabulary[id].EncodeToUtf16(pair)]);
        }
        return sb.ToString();
    }

    public byte[] DecodeBytes(ReadOnlySpan<int> ids) => Encoding.UTF8.GetBytes(Decode(ids));

    public string ToJson() => TokenizerJson.Write(this);
}

/// <summary>
/// Raw bytes as tokens (V = 256). A file is tokenized byte for byte, never decoded: a Latin-1 file of n bytes is
/// n tokens equal to its bytes. Text given as a string is tokenized as its UTF-8 bytes.
/// </summary>
public sealed class ByteTokenizer : ITokenizer
{
    public string Kind => "byte";
    public int VocabSize => 256;

    public int[] Encode(string text) => Encode(Tokenizers.Utf8(text));

    /// <summary>One token per byte, equal to it.</summary>
    public static int[] Encode(ReadOnlySpan<byte> bytes)
    {
        var ids = new int[bytes.Length];
        for (var i = 0; i < bytes.Length; i++)
            ids[i] = bytes[i];
        return ids;
    }

    public string Decode(ReadOnlySpan<int> ids) => Encoding.UTF8.GetString(DecodeBytes(ids));

    public byte[] DecodeBytes(ReadOnlySpan<int> ids)
    {
        var bytes = new byte[ids.Length];
        for (var i = 0; i < ids.Length; i++)
            bytes[i] = (uint)ids[i] < 256 ? (byte)ids[i] : throw Tokenizers.BadId(ids[i], 256);
        return bytes;
    }

    public string ToJson() => TokenizerJson.Write(this);
}
