// The one place tokenizers are written to and read from JSON (the checkpoint's "tokenizer" metadata and the
// token cache's identity). Characters are stored as code point numbers, so no JSON escaping can lose one:
//   {"kind":"char","code_points":[10,32,33,...],"start_token":0}   {"kind":"byte","start_token":10}   {"kind":"gpt2"}
// "start_token" (optional) is the token an empty prompt starts from: one seen in the training text.
// Older checkpoints stored the characters as a string, {"kind":"char","chars":"..."}, one token per UTF-16
// unit; those whose characters are all in the Basic Multilingual Plane still load, with the same ids.
using System.Buffers;
using System.Text;
using System.Text.Json;

namespace SddIlgpu.Training.Data;

public static class TokenizerJson
{
    /// <summary>JSON of <paramref name="tokenizer"/>, with the empty-prompt start token when given.</summary>
    public static string Write(ITokenizer tokenizer, int? startToken = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (startToken is int s && (uint)s >= (uint)tokenizer.VocabSize)
            throw Tokenizers.BadId(s, tokenizer.VocabSize);
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("kind", tokenizer.Kind);
            if (tokenizer is CharTokenizer c)
            {
                w.WriteStartArray("code_points");
                foreach (var r in c.Vocabulary)
                    w.WriteNumberValue(r.Value);
                w.WriteEndArray();
            }
            if (startToken is int start)
                w.WriteNumber("start_token", start);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>
    /// The tokenizer and start token of <paramref name="json"/>. Anything malformed is an
    /// <see cref="InvalidDataException"/> that names the field.
    /// </summary>
    public static (ITokenizer Tokenizer, int? StartToken) Read(string json)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"The tokenizer JSON is malformed: {e.Message}", e);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"The tokenizer JSON must be an object; it is {root.ValueKind}.");
            var kind = root.TryGetProperty("kind", out var k) && k.ValueKind == JsonValueKind.String ? k.GetString()
                : throw new InvalidDataException("The tokenizer JSON lacks the string field 'kind'.");
            ITokenizer tokenizer = kind switch
            {
                "char" => ReadChar(root),
                "byte" => new ByteTokenizer(),
                "gpt2" => new Gpt2Tokenizer(),
                _ => throw new InvalidDataException($"The tokenizer kind '{kind}' is unknown; this sdd knows {string.Join(", ", Tokenizers.Kinds)}."),
            };
            int? start = null;
            if (root.TryGetProperty("start_token", out var s))
                start = s.ValueKind == JsonValueKind.Number && s.TryGetInt32(out var id) && (uint)id < (uint)tokenizer.VocabSize ? id
                    : throw new InvalidDataException($"The tokenizer JSON's 'start_token' must be a token id in [0, {tokenizer.VocabSize}); it is {s.GetRawText()}.");
            return (tokenizer, start);
        }
    }

    static CharTokenizer ReadChar(JsonElement root)
    {
        if (root.TryGetProperty("code_points", out var points))
        {
            if (points.ValueKind != JsonValueKind.Array)
                throw new InvalidDataException("The character tokenizer's 'code_points' must be an array of Unicode scalar values.");
            var runes = new List<Rune>(points.GetArrayLength());
            foreach (var p in points.EnumerateArray())
                runes.Add(p.ValueKind == JsonValueKind.Number && p.TryGetInt32(out var v) && Rune.IsValid(v) ? new Rune(v)
                    : throw new InvalidDataException($"The character tokenizer's 'code_points' item {runes.Count} is {p.GetRawText()}, not a Unicode scalar value (0 to 0x10FFFF, no surrogates)."));
            return Build(runes);
        }
        if (root.TryGetProperty("chars", out var chars) && chars.ValueKind == JsonValueKind.String)
        {
            string legacy;
            try
            {
                legacy = chars.GetString()!;
            }
            catch (InvalidOperationException e)
            {
                throw new InvalidDataException($"The character tokenizer's 'chars' is not valid text ({e.Message}).", e);
            }
            return ReadLegacy(legacy);
        }
        throw new InvalidDataException("The character tokenizer lacks its vocabulary ('code_points').");
    }

    // The first format: one token per UTF-16 unit. Its writer turned lone surrogates into U+FFFD, so a
    // vocabulary with characters outside the BMP comes back with U+FFFD twice (or with surrogates): those
    // tokens are lost and the model cannot be used; any other vocabulary maps to the same ids.
    static CharTokenizer ReadLegacy(string chars)
    {
        var runes = new List<Rune>(chars.Length);
        var seen = new HashSet<char>();
        foreach (var c in chars)
        {
            if (char.IsSurrogate(c) || !seen.Add(c))
                throw new InvalidDataException(
                    "This checkpoint's character tokenizer was written by an older sdd that split characters outside the Basic Multilingual Plane " +
                    $"(such as emoji) into UTF-16 halves and lost them ({(char.IsSurrogate(c) ? $"it holds the lone half U+{(int)c:X4}" : $"{Tokenizers.Name(new Rune(c))} is stored twice")}): " +
                    "it cannot be restored. Train the model again with this sdd.");
            runes.Add(new Rune(c));
        }
        return Build(runes);
    }

    static CharTokenizer Build(List<Rune> runes)
    {
        try
        {
            return new CharTokenizer(runes);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"The character tokenizer's vocabulary is invalid: {e.Message}", e);
        }
    }
}
