// llm.c's token shard format (karpathy/llm.c dev/data/data_common.py, write_datafile): a header of 256
// little-endian int32 — [0] magic, [1] version, [2] token count, the rest zero — then the tokens, uint16
// for GPT-2-sized vocabularies (magic 20240520, version 1) or uint32 for larger ones (magic 20240801,
// version 7, llm.c's "llama-3" layout). One strict reader checks all of it before a token is used.
using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using SddIlgpu.Layers;

namespace SddIlgpu.Training.Data;

/// <summary>The two token widths of llm.c's shard format.</summary>
public enum ShardTokenWidth
{
    /// <summary>uint16 tokens: magic 20240520, version 1 (vocabularies up to 65,536).</summary>
    UInt16 = 2,

    /// <summary>uint32 tokens: magic 20240801, version 7 (larger vocabularies).</summary>
    UInt32 = 4,
}

/// <summary>Reads and writes llm.c token shards (<c>*_train_*.bin</c>, <c>*_val_*.bin</c>).</summary>
public static class TokenShard
{
    /// <summary>Header size: 256 int32 values, 1,024 bytes.</summary>
    public const int HeaderBytes = 256 * sizeof(int);

    /// <summary>Magic of the uint16 layout (llm.c "gpt-2").</summary>
    public const int MagicUInt16 = 20240520;

    /// <summary>Magic of the uint32 layout (llm.c "llama-3").</summary>
    public const int MagicUInt32 = 20240801;

    /// <summary>Version written with <see cref="MagicUInt16"/>.</summary>
    public const int VersionUInt16 = 1;

    /// <summary>Version written with <see cref="MagicUInt32"/>.</summary>
    public const int VersionUInt32 = 7;

    /// <summary>The width that holds every id of a vocabulary of <paramref name="vocabSize"/> tokens.</summary>
    public static ShardTokenWidth WidthFor(int vocabSize) =>
        vocabSize <= 65_536 ? ShardTokenWidth.UInt16 : ShardTokenWidth.UInt32;

    /// <summary>The 1,024-byte header for <paramref name="count"/> tokens of the given width.</summary>
    /// <exception cref="ArgumentOutOfRangeException">count is negative or ≥ 2^31 (llm.c's limit).</exception>
    public static byte[] Header(long count, ShardTokenWidth width)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, (long)int.MaxValue);
        var header = new byte[HeaderBytes];
        var wide = width == ShardTokenWidth.UInt32;
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(0), wide ? MagicUInt32 : MagicUInt16);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(4), wide ? VersionUInt32 : VersionUInt16);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(8), (int)count);
        return header;
    }

    /// <summary>Writes a shard atomically (temporary file, then rename).</summary>
    /// <param name="path">Destination file.</param>
    /// <param name="tokens">Token ids, each in [0, vocabSize).</param>
    /// <param name="vocabSize">Vocabulary size; chooses the width (<see cref="WidthFor"/>).</param>
    /// <exception cref="ArgumentOutOfRangeException">A token is outside [0, vocabSize).</exception>
    public static void Write(string path, ReadOnlySpan<int> tokens, int vocabSize)
    {
        var width = WidthFor(vocabSize);
        var bytes = new byte[HeaderBytes + (long)tokens.Length * (int)width];
        Header(tokens.Length, width).CopyTo(bytes, 0);
        var body = bytes.AsSpan(HeaderBytes);
        for (var i = 0; i < tokens.Length; i++)
        {
            var t = tokens[i];
            if ((uint)t >= (uint)vocabSize)
                throw new ArgumentOutOfRangeException(nameof(tokens), $"Token {t} at index {i} is outside the vocabulary [0, {vocabSize}).");
            if (width == ShardTokenWidth.UInt16)
                BinaryPrimitives.WriteUInt16LittleEndian(body[(2 * i)..], (ushort)t);
            else
                BinaryPrimitives.WriteUInt32LittleEndian(body[(4 * i)..], (uint)t);
        }
        AtomicFile.WriteAllBytes(path, bytes);
    }

    /// <summary>Reads and checks a shard's header against the file's length.</summary>
    /// <returns>The token width and count.</returns>
    /// <exception cref="DataException">The file is shorter than a header, has an unknown magic or
    /// version, a negative count, nonzero reserved words, or a length that disagrees with the count.</exception>
    public static (ShardTokenWidth Width, long Count) ReadHeader(string path)
    {
        using var stream = OpenRead(path);
        Span<byte> header = stackalloc byte[HeaderBytes];
        if (stream.Length < HeaderBytes || stream.ReadAtLeast(header, HeaderBytes, throwOnEndOfStream: false) < HeaderBytes)
            throw Bad(path, $"it has {stream.Length} bytes, fewer than the {HeaderBytes}-byte header");
        return CheckHeader(path, header, stream.Length);
    }

    internal static (ShardTokenWidth Width, long Count) CheckHeader(string path, ReadOnlySpan<byte> header, long fileLength)
    {
        var magic = BinaryPrimitives.ReadInt32LittleEndian(header);
        var version = BinaryPrimitives.ReadInt32LittleEndian(header[4..]);
        var count = BinaryPrimitives.ReadInt32LittleEndian(header[8..]);
        var width = magic switch
        {
            MagicUInt16 => ShardTokenWidth.UInt16,
            MagicUInt32 => ShardTokenWidth.UInt32,
            _ => throw Bad(path, $"its magic is {magic}, not {MagicUInt16} (uint16 tokens) or {MagicUInt32} (uint32 tokens)"),
        };
        var expectedVersion = width == ShardTokenWidth.UInt16 ? VersionUInt16 : VersionUInt32;
        if (version != expectedVersion)
            throw Bad(path, $"magic {magic} needs version {expectedVersion}, but the header says {version}");
        if (count < 0)
            throw Bad(path, $"its token count is negative ({count})");
        var expectedLength = HeaderBytes + (long)count * (int)width;
        if (fileLength != expectedLength)
            throw Bad(path, $"the header promises {count} tokens ({expectedLength} bytes in all) but the file has {fileLength} bytes");
        return (width, count);
    }

    static FileStream OpenRead(string path)
    {
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new DataException($"Token shard '{path}' does not exist. Run `sdd prepare` to make shards, or check the --data path.");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataException($"Token shard '{path}' cannot be read: {e.Message}");
        }
    }

    internal static DataException Bad(string path, string why) =>
        new($"Token shard '{path}' is not an llm.c token file: {why}. Re-create it with `sdd prepare`.");
}

/// <summary>One shard, memory-mapped read-only; tokens are read in place, never copied whole.</summary>
public sealed class MappedShard : IDisposable
{
    readonly MemoryMappedFile? file;
    readonly MemoryMappedViewAccessor? view;
    bool disposed;

    /// <summary>Maps <paramref name="path"/> after checking its header.</summary>
    /// <exception cref="DataException">The file is missing or not a valid shard.</exception>
    public MappedShard(string path)
    {
        Path = path;
        (Width, Count) = TokenShard.ReadHeader(path);
        if (Count == 0)
            return; // a zero-length view cannot be mapped; an empty shard has nothing to read
        file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, mapName: null, capacity: 0, MemoryMappedFileAccess.Read);
        view = file.CreateViewAccessor(TokenShard.HeaderBytes, Count * (int)Width, MemoryMappedFileAccess.Read);
    }

    /// <summary>The shard's file.</summary>
    public string Path { get; }

    /// <summary>Bytes per token.</summary>
    public ShardTokenWidth Width { get; }

    /// <summary>Number of tokens.</summary>
    public long Count { get; }

    /// <summary>Copies tokens [start, start + dest.Length) into <paramref name="dest"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is outside the shard.</exception>
    public void Read(long start, Span<int> dest)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (start < 0 || start + dest.Length > Count)
            throw new ArgumentOutOfRangeException(nameof(start), $"Tokens [{start}, {start + dest.Length}) are outside shard '{Path}' of {Count} tokens.");
        for (var i = 0; i < dest.Length; i++)
        {
            var offset = (start + i) * (int)Width;
            var id = Width == ShardTokenWidth.UInt16 ? view!.ReadUInt16(offset) : view!.ReadUInt32(offset);
            if (id > int.MaxValue)
                throw TokenShard.Bad(Path, $"token {start + i} is {id}, beyond any vocabulary");
            dest[i] = (int)id;
        }
    }

    public void Dispose()
    {
        if (disposed)
            return;
        disposed = true;
        view?.Dispose();
        file?.Dispose();
    }
}
