// The token cache (~/.cache/sdd/tokens): one file per (text, tokenizer) holding the encoded corpus, so a second
// run skips the encode. Nothing in it is trusted: a 128-byte little-endian header records what it was written
// for and a checksum, and a cache that fails any check is reported and re-encoded. Layout:
//   0 magic "sdd-tok\n" | 8 version (int32) | 12 vocabulary size (int32) | 16 token count (int64)
//   24 SHA-256 of the tokenizer JSON | 56 SHA-256 of the encoded bytes | 88 SHA-256 of the token data | 120 zero
//   128 tokens, int32 each
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using SddIlgpu.Layers;

namespace SddIlgpu.Training.Data;

internal static class TokenCache
{
    public const int Version = 1;
    public const int HeaderBytes = 128;
    static ReadOnlySpan<byte> Magic => "sdd-tok\n"u8;

    /// <summary>What a cache file must have been written for: the encoded bytes, the tokenizer, the vocabulary size.</summary>
    public readonly record struct Identity(byte[] SourceHash, byte[] TokenizerHash, int Vocab);

    /// <summary>
    /// The cached tokens, or null: <paramref name="problem"/> is null when there is no cache file and says what is
    /// wrong (one line) when there is one that cannot be used.
    /// </summary>
    public static int[]? Read(string path, Identity id, out string? problem)
    {
        problem = null;
        byte[] bytes;
        try
        {
            if (!File.Exists(path))
                return null;
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problem = $"cannot be read ({e.Message})";
            return null;
        }
        problem = Check(bytes, id, out var tokens);
        return problem is null ? tokens : null;
    }

    static string? Check(byte[] bytes, Identity id, out int[] tokens)
    {
        tokens = [];
        var h = bytes.AsSpan();
        if (h.Length < HeaderBytes)
            return $"is truncated ({h.Length} bytes, shorter than its {HeaderBytes}-byte header)";
        if (!h[..8].SequenceEqual(Magic))
            return "is not a token cache of this format (an older sdd's, or another file)";
        if (BinaryPrimitives.ReadInt32LittleEndian(h[8..]) is var version and not Version)
            return $"has format version {version}; this sdd reads version {Version}";
        if (BinaryPrimitives.ReadInt32LittleEndian(h[12..]) != id.Vocab || !h[24..56].SequenceEqual(id.TokenizerHash))
            return "was written for another tokenizer";
        if (!h[56..88].SequenceEqual(id.SourceHash))
            return "was written for another text";
        if (h[120..HeaderBytes].ContainsAnyExcept((byte)0))
            return "has a non-zero reserved header field (corrupt)";
        var count = BinaryPrimitives.ReadInt64LittleEndian(h[16..]);
        var data = h[HeaderBytes..];
        if (count < 0 || count > int.MaxValue || data.Length != count * sizeof(int))
            return $"is truncated or padded: {data.Length} bytes of tokens where its header promises {count} tokens ({count * sizeof(int)} bytes)";
        if (!SHA256.HashData(data).AsSpan().SequenceEqual(h[88..120]))
            return "fails its checksum (corrupt)";
        tokens = new int[count];
        data.CopyTo(MemoryMarshal.AsBytes(tokens.AsSpan()));
        if (!BitConverter.IsLittleEndian)
            BinaryPrimitives.ReverseEndianness(tokens, tokens);
        for (var i = 0; i < tokens.Length; i++)
            if ((uint)tokens[i] >= (uint)id.Vocab)
                return $"holds token id {tokens[i]} at position {i}, outside the vocabulary [0, {id.Vocab})";
        return null;
    }

    /// <summary>Writes the cache atomically (temporary file, then rename).</summary>
    public static void Write(string path, Identity id, int[] tokens)
    {
        var data = new byte[(long)tokens.Length * sizeof(int)];
        MemoryMarshal.AsBytes(tokens.AsSpan()).CopyTo(data);
        if (!BitConverter.IsLittleEndian)
            BinaryPrimitives.ReverseEndianness(MemoryMarshal.Cast<byte, int>(data.AsSpan()), MemoryMarshal.Cast<byte, int>(data.AsSpan()));
        var header = new byte[HeaderBytes];
        Magic.CopyTo(header);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(8), Version);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(12), id.Vocab);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(16), tokens.Length);
        id.TokenizerHash.CopyTo(header.AsSpan(24));
        id.SourceHash.CopyTo(header.AsSpan(56));
        SHA256.HashData(data).CopyTo(header.AsSpan(88));
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        AtomicFile.Write(path, s =>
        {
            s.Write(header);
            s.Write(data);
        });
    }
}
