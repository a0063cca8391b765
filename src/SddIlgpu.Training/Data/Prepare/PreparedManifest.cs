// prepared.json: what a prepared folder was made from and what it holds, written last (so a folder without
// it is unfinished) and read back with System.Text.Json source generation.
using System.Text.Json.Serialization;

namespace SddIlgpu.Training.Data.Prepare;

/// <summary>The manifest of a prepared folder (<c>prepared.json</c>).</summary>
public sealed record PreparedManifest
{
    /// <summary>Always <see cref="FormatName"/>.</summary>
    public required string Format { get; init; }

    /// <summary>Manifest version; this build reads <see cref="CurrentVersion"/>.</summary>
    public required int Version { get; init; }

    /// <summary>The tokenizer's JSON (<see cref="ITokenizer.ToJson"/>).</summary>
    public required string Tokenizer { get; init; }

    /// <summary>"char", "byte" or "gpt2".</summary>
    public required string TokenizerKind { get; init; }

    public required int VocabSize { get; init; }

    /// <summary>"documents" (whole documents go to one split) or "position" (one document cut at a token position).</summary>
    public required string SplitMode { get; init; }

    public required double ValFraction { get; init; }

    public int? ValDocs { get; init; }

    public required ulong Seed { get; init; }

    /// <summary>What separates documents, in words.</summary>
    public required string Separator { get; init; }

    public required long Documents { get; init; }

    public required PreparedSplit Train { get; init; }

    public required PreparedSplit Val { get; init; }

    public required IReadOnlyList<PreparedInput> Inputs { get; init; }

    public required string CreatedUtc { get; init; }

    public const string FormatName = "sdd-prepared";
    public const int CurrentVersion = 1;
    public const string FileName = "prepared.json";
}

/// <summary>One split of a prepared folder.</summary>
public sealed record PreparedSplit(long Tokens, long Documents, IReadOnlyList<PreparedShard> Shards);

/// <summary>One shard file (name relative to the folder), its token count and the SHA-256 (lower-case hex) of its token bytes.</summary>
public sealed record PreparedShard(string Name, long Tokens, string Sha256);

/// <summary>One input of <c>sdd prepare</c>.</summary>
public sealed record PreparedInput(string Path, long Bytes, string Format, long Documents);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true,
    UseStringEnumConverter = true, RespectRequiredConstructorParameters = true)]
[JsonSerializable(typeof(PreparedManifest))]
internal sealed partial class PreparedJsonContext : JsonSerializerContext;
