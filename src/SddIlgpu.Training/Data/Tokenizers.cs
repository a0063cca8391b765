// Tokenizers: character-level (vocabulary from the corpus, as nanoGPT's shakespeare_char), byte-level, and
// GPT-2 BPE through Microsoft.ML.Tokenizers. Each serialises to JSON so a checkpoint carries its tokenizer.
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.ML.Tokenizers;

namespace SddIlgpu.Training.Data;

/// <summary>Turns text into token ids and back.</summary>
public interface ITokenizer
{
    /// <summary>"char", "byte" or "gpt2".</summary>
    string Kind { get; }
    int VocabSize { get; }
    int[] Encode(string text);
    string Decode(ReadOnlySpan<int> ids);

    /// <summary>JSON that <see cref="Tokenizers.FromJson"/> turns back into an equal tokenizer.</summary>
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

    /// <summary>Rebuilds a tokenizer from its <see cref="ITokenizer.ToJson"/> form (as stored in a checkpoint).</summary>
    /// <exception cref="InvalidDataException">Not JSON, an unknown kind or key, or a missing or empty vocabulary; the message names the field.</exception>
    public static ITokenizer FromJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        TokenizerJson dto;
        try
        {
            dto = JsonSerializer.Deserialize(json, TokenizerJsonContext.Default.TokenizerJson)
                ?? throw new InvalidDataException("Tokenizer JSON is null; expected an object with 'kind'.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Tokenizer JSON is invalid ({e.Message.ReplaceLineEndings(" ")}).", e);
        }
        return dto.Kind switch
        {
            "char" when dto.Chars is { Length: > 0 } chars => new CharTokenizer(chars),
            "char" => throw new InvalidDataException("Tokenizer JSON of kind 'char' lacks its vocabulary 'chars' (a non-empty string)."),
            "byte" => new ByteTokenizer(),
            "gpt2" => new Gpt2Tokenizer(),
            null => throw new InvalidDataException("Tokenizer JSON lacks 'kind'."),
            _ => throw new InvalidDataException($"Unknown tokenizer kind '{dto.Kind}'; this sdd knows {string.Join(", ", Kinds)}."),
        };
    }
}

/// <summary>The JSON form of a tokenizer: its kind and, for "char", its characters in id order.</summary>
internal sealed record TokenizerJson(string? Kind, string? Chars = null);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow)]
[JsonSerializable(typeof(TokenizerJson))]
internal sealed partial class TokenizerJsonContext : JsonSerializerContext;

/// <summary>One token per distinct character of the corpus, in ordinal order.</summary>
public sealed class CharTokenizer : ITokenizer
{
    readonly string chars;
    readonly Dictionary<char, int> index = [];

    public CharTokenizer(string chars)
    {
        if (chars.Length == 0)
            throw new ArgumentException("A character tokenizer needs at least one character.");
        this.chars = chars;
        for (var i = 0; i < chars.Length; i++)
            index[chars[i]] = i;
    }

    public static CharTokenizer FromCorpus(string corpus)
    {
        var set = new SortedSet<char>(corpus, Comparer<char>.Create((a, b) => a.CompareTo(b)));
        return new CharTokenizer(new string([.. set]));
    }

    public string Kind => "char";
    public int VocabSize => chars.Length;
    public string Characters => chars;

    public int[] Encode(string text)
    {
        var ids = new int[text.Length];
        for (var i = 0; i < text.Length; i++)
            ids[i] = index.TryGetValue(text[i], out var id) ? id
                : throw new ArgumentException($"Character '{text[i]}' (U+{(int)text[i]:X4}) is not in this model's {chars.Length}-character vocabulary.");
        return ids;
    }

    public string Decode(ReadOnlySpan<int> ids)
    {
        var sb = new StringBuilder(ids.Length);
        foreach (var id in ids)
            sb.Append(chars[id]);
        return sb.ToString();
    }

    public string ToJson() => JsonSerializer.Serialize(new TokenizerJson(Kind, chars), TokenizerJsonContext.Default.TokenizerJson);
}

/// <summary>UTF-8 bytes as tokens (vocabulary 256).</summary>
public sealed class ByteTokenizer : ITokenizer
{
    public string Kind => "byte";
    public int VocabSize => 256;
    public int[] Encode(string text) => [.. Encoding.UTF8.GetBytes(text).Select(b => (int)b)];

    public string Decode(ReadOnlySpan<int> ids)
    {
        var bytes = new byte[ids.Length];
        for (var i = 0; i < ids.Length; i++)
            bytes[i] = (byte)ids[i];
        return Encoding.UTF8.GetString(bytes);
    }

    public string ToJson() => JsonSerializer.Serialize(new TokenizerJson(Kind), TokenizerJsonContext.Default.TokenizerJson);
}

/// <summary>GPT-2's byte-pair encoding (50,257 tokens) from Microsoft.ML.Tokenizers' bundled data.</summary>
public sealed class Gpt2Tokenizer : ITokenizer
{
    static readonly Lazy<Tokenizer> Shared = new(() => TiktokenTokenizer.CreateForModel("gpt2"));

    public string Kind => "gpt2";
    public int VocabSize => 50257;
    public int[] Encode(string text) => [.. Shared.Value.EncodeToIds(text)];
    public string Decode(ReadOnlySpan<int> ids) => Shared.Value.Decode(ids.ToArray()) ?? "";
    public string ToJson() => JsonSerializer.Serialize(new TokenizerJson(Kind), TokenizerJsonContext.Default.TokenizerJson);
}
