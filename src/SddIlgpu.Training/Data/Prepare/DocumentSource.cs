// Reads the inputs of `sdd prepare` as a stream of pieces of documents, with bounded memory: a plain text
// file is one document read in chunks cut only where the tokenizers cut anyway (so chunked and whole-file
// encodes agree), JSON Lines and Parquet give one document per line or row, and `.gz` wraps any of them.
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Parquet;
using Parquet.Schema;

namespace SddIlgpu.Training.Data.Prepare;

/// <summary>A run of UTF-8 bytes of one document; <see cref="StartsDocument"/> on its first piece.</summary>
/// <param name="Bytes">The bytes (the piece owns the array).</param>
/// <param name="StartsDocument">True on the first piece of each document.</param>
/// <param name="Input">The input file, for messages.</param>
/// <param name="Where">Where the piece starts in the input ("byte 123" or "line 7"), for messages.</param>
/// <param name="FileOffset">Byte offset of the piece in a plain text input (-1 elsewhere).</param>
internal sealed record TextPiece(byte[] Bytes, bool StartsDocument, string Input, string Where, long FileOffset);

/// <summary>The kinds of input file, chosen by extension (after an optional <c>.gz</c>).</summary>
public enum InputFormat
{
    /// <summary>A UTF-8 text file: one document.</summary>
    Text,

    /// <summary>JSON Lines: one object per line, the document in a string field.</summary>
    JsonLines,

    /// <summary>Apache Parquet: one document per row of a string column.</summary>
    Parquet,
}

/// <summary>Where a plain text file may be cut into pieces for parallel encoding without changing the tokens.</summary>
internal enum CutRule
{
    /// <summary>Only where GPT-2's pre-tokenizer never joins text (<see cref="DocumentSource.SafeCut"/>); a BOM is dropped.</summary>
    Words,

    /// <summary>At any code point boundary (char: one token per code point); a BOM is dropped.</summary>
    CodePoints,

    /// <summary>Anywhere, and every byte is kept, a leading BOM too (byte: the tokens are the file's bytes).</summary>
    Bytes,
}

internal static class DocumentSource
{
    /// <summary>The cut rule of a tokenizer kind.</summary>
    public static CutRule RuleFor(string tokenizerKind) => tokenizerKind switch
    {
        "byte" => CutRule.Bytes,
        "char" => CutRule.CodePoints,
        _ => CutRule.Words,
    };

    /// <summary>Target size of a text chunk; a chunk ends at the first safe cut after it.</summary>
    public const int ChunkBytes = 1 << 20;

    /// <summary>A text with no safe cut in this many bytes is refused (no newline or space followed by text).</summary>
    public const int MaxChunkBytes = 64 << 20;

    public static InputFormat FormatOf(string path)
    {
        var name = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? path[..^3] : path;
        var ext = Path.GetExtension(name).ToLowerInvariant();
        return ext switch
        {
            ".jsonl" or ".ndjson" => InputFormat.JsonLines,
            ".parquet" => InputFormat.Parquet,
            _ => InputFormat.Text,
        };
    }

    /// <summary>The pieces of every document of <paramref name="path"/>, in order.</summary>
    /// <param name="path">Input file.</param>
    /// <param name="field">JSON Lines field or Parquet column holding the text.</param>
    /// <param name="consumed">Called with the number of input bytes (compressed size for .gz) consumed so far.</param>
    public static IEnumerable<TextPiece> Read(string path, string field, Action<long> consumed, int chunkBytes = ChunkBytes, CutRule rule = CutRule.Words)
    {
        if (!File.Exists(path))
            throw new DataException($"Input '{path}' does not exist. Check the path given to `sdd prepare`.");
        return FormatOf(path) switch
        {
            InputFormat.JsonLines => ReadJsonLines(path, field, consumed),
            InputFormat.Parquet => ReadParquet(path, field, consumed),
            _ => ReadText(path, consumed, chunkBytes, rule),
        };
    }

    static Stream Open(string path, out FileStream file)
    {
        file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new CheckedGzipStream(file, path) : file;
    }

    /// <summary>
    /// gzip that checks, when it ends, that the last member's ISIZE (RFC 1952 §2.3.1: the inflated size mod 2³²)
    /// equals what it inflated. .NET's GZipStream ends quietly on a file cut short, which would prepare part of the
    /// data as if it were all of it; this makes that a <see cref="DataException"/>. A multi-member gzip (bgzip)
    /// fails the check too, and the message says to decompress it first.
    /// </summary>
    sealed class CheckedGzipStream(FileStream file, string path) : Stream
    {
        readonly GZipStream inner = new(file, CompressionMode.Decompress);
        long inflated;
        bool ended;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => inflated; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = inner.Read(buffer);
            inflated += n;
            if (n == 0 && buffer.Length > 0 && !ended)
            {
                ended = true;
                Span<byte> size = stackalloc byte[4];
                var isize = file.Length >= 18 && RandomAccess.Read(file.SafeFileHandle, size, file.Length - 4) == 4
                    ? System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(size)
                    : (uint?)null;
                if (isize != (uint)inflated)
                    throw new DataException(
                        $"Input '{path}' is a truncated or damaged gzip: it ends after {inflated:N0} inflated bytes, but its trailer records {(isize is { } v ? $"{v:N0} (mod 2^32)" : "none")}. " +
                        "Download or compress it again (a multi-member gzip such as bgzip output must be decompressed first).");
            }
            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
                inner.Dispose();
            base.Dispose(disposing);
        }
    }

    static IEnumerable<TextPiece> ReadText(string path, Action<long> consumed, int chunkBytes, CutRule rule)
    {
        using var stream = Open(path, out var file);
        var buffer = new byte[chunkBytes * 2];
        int filled = 0;
        long offset = 0;
        var first = true;
        var eof = false;
        while (!eof || filled > 0)
        {
            while (!eof && filled < buffer.Length)
            {
                var n = ReadSome(stream, buffer.AsSpan(filled), path);
                if (n == 0)
                    eof = true;
                filled += n;
            }
            consumed(file.Position);
            var skip = 0;
            if (first && rule != CutRule.Bytes && filled >= 3 && buffer[0] == 0xEF && buffer[1] == 0xBB && buffer[2] == 0xBF)
                skip = 3; // a UTF-8 byte order mark is not text (the byte tokenizer keeps every byte)
            int cut;
            if (eof)
                cut = filled;
            else
            {
                cut = rule switch
                {
                    CutRule.Bytes => Math.Min(chunkBytes, filled),
                    CutRule.CodePoints => CodePointCut(buffer.AsSpan(0, filled), Math.Min(chunkBytes, filled)),
                    _ => SafeCut(buffer.AsSpan(0, filled), Math.Min(chunkBytes, filled)),
                };
                if (cut <= skip)
                {
                    if (buffer.Length >= MaxChunkBytes)
                        throw new DataException($"Input '{path}' has {MaxChunkBytes >> 20} MiB from byte {offset} on without a newline or a space before a word, so it cannot be split for encoding. Break it into lines.");
                    Array.Resize(ref buffer, buffer.Length * 2);
                    continue;
                }
            }
            if (cut > skip)
            {
                yield return new TextPiece(buffer[skip..cut], first, path, $"byte {offset + skip}", offset + skip);
                first = false;
            }
            Array.Copy(buffer, cut, buffer, 0, filled - cut);
            offset += cut;
            filled -= cut;
        }
        if (first)
            yield return new TextPiece([], true, path, "byte 0", 0); // an empty file is still a document
    }

    static int ReadSome(Stream s, Span<byte> into, string path)
    {
        try
        {
            return s.Read(into);
        }
        catch (InvalidDataException e)
        {
            throw new DataException($"Input '{path}' is not valid gzip ({e.Message}). Check the file or decompress it first.");
        }
    }

    /// <summary>
    /// The first position at or after <paramref name="from"/> where text can be split without changing any
    /// tokenizer's output: after a single newline that follows a non-space and precedes a non-space, or
    /// before a single space that follows a non-space and precedes a non-space. GPT-2's pre-tokenizer
    /// (<c>'s|'t|… | ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+</c>) never joins text across such a
    /// point, and both are UTF-8 character boundaries. Returns 0 when there is none.
    /// </summary>
    internal static int SafeCut(ReadOnlySpan<byte> text, int from)
    {
        for (var p = Math.Max(from, 2); p < text.Length - 4; p++)
        {
            var b = text[p];
            if (text[p - 1] == (byte)'\n' && !IsSpaceAt(text, p) && !IsSpaceBefore(text, p - 1))
                return p;
            if (b == (byte)' ' && !IsSpaceBefore(text, p) && !IsSpaceAt(text, p + 1))
                return p;
        }
        return 0;
    }

    /// <summary>The first position at or after <paramref name="from"/> that does not fall inside a UTF-8 sequence (0 for none).</summary>
    internal static int CodePointCut(ReadOnlySpan<byte> text, int from)
    {
        for (var p = from; p < text.Length; p++)
            if ((text[p] & 0xC0) != 0x80)
                return p;
        return 0;
    }

    static bool IsSpaceAt(ReadOnlySpan<byte> text, int p) =>
        System.Text.Rune.DecodeFromUtf8(text[p..], out var r, out _) != System.Buffers.OperationStatus.Done || System.Text.Rune.IsWhiteSpace(r);

    static bool IsSpaceBefore(ReadOnlySpan<byte> text, int p) =>
        System.Text.Rune.DecodeLastFromUtf8(text[..p], out var r, out _) != System.Buffers.OperationStatus.Done || System.Text.Rune.IsWhiteSpace(r);

    static IEnumerable<TextPiece> ReadJsonLines(string path, string field, Action<long> consumed)
    {
        using var stream = Open(path, out var file);
        var line = 0L;
        foreach (var bytes in Lines(stream, path))
        {
            line++;
            consumed(file.Position);
            if (bytes.Length == 0 || bytes.AsSpan().Trim((byte)'\r').IsEmpty)
                continue;
            string? text;
            try
            {
                using var doc = JsonDocument.Parse(bytes);
                if (doc.RootElement.ValueKind != JsonValueKind.Object)
                    throw new DataException($"Input '{path}' line {line} is not a JSON object. Each line of a .jsonl file must be an object with a \"{field}\" string.");
                if (!doc.RootElement.TryGetProperty(field, out var value))
                    throw new DataException($"Input '{path}' line {line} has no \"{field}\" field. Name the text field with --field.");
                if (value.ValueKind != JsonValueKind.String)
                    throw new DataException($"Input '{path}' line {line}: \"{field}\" is a {value.ValueKind}, not a string. Name the text field with --field.");
                text = value.GetString();
            }
            catch (JsonException e)
            {
                throw new DataException($"Input '{path}' line {line} is not valid JSON ({e.Message.Split('\n')[0]}). Fix the line or remove it.");
            }
            catch (InvalidOperationException e)
            {
                throw new DataException($"Input '{path}' line {line} has text that is not valid Unicode ({e.Message}). Fix the line or remove it.");
            }
            yield return new TextPiece(StrictUtf8(text ?? "", path, $"line {line}"), true, path, $"line {line}", -1);
        }
    }

    static IEnumerable<byte[]> Lines(Stream stream, string path)
    {
        var buffer = new byte[1 << 16];
        var pending = new MemoryStream();
        int n;
        while ((n = ReadSome(stream, buffer, path)) > 0)
        {
            var start = 0;
            int nl;
            while ((nl = Array.IndexOf(buffer, (byte)'\n', start, n - start)) >= 0)
            {
                pending.Write(buffer, start, nl - start);
                yield return pending.ToArray();
                pending.SetLength(0);
                start = nl + 1;
            }
            pending.Write(buffer, start, n - start);
        }
        if (pending.Length > 0)
            yield return pending.ToArray();
    }

    static IEnumerable<TextPiece> ReadParquet(string path, string field, Action<long> consumed)
    {
        string? tempCopy = null;
        var source = path;
        try
        {
            if (path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase))
            {
                // Parquet needs to seek; a compressed one is inflated into a temporary file first.
                tempCopy = Path.Combine(Path.GetTempPath(), $"sdd-prepare-{Environment.ProcessId}-{Guid.NewGuid():N}.parquet");
                try
                {
                    using var inflated = Open(path, out _);
                    using var outFile = File.Create(tempCopy);
                    inflated.CopyTo(outFile);
                }
                catch (InvalidDataException e)
                {
                    throw new DataException($"Input '{path}' is not valid gzip ({e.Message}). Check the file or decompress it first.");
                }
                source = tempCopy;
            }
            foreach (var piece in ReadParquetFile(source, path, field, consumed))
                yield return piece;
        }
        finally
        {
            if (tempCopy is not null)
                File.Delete(tempCopy);
        }
    }

    static IEnumerable<TextPiece> ReadParquetFile(string file, string path, string field, Action<long> consumed)
    {
        using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        ParquetReader reader;
        DataField column;
        try
        {
            reader = ParquetReader.CreateAsync(stream).GetAwaiter().GetResult();
            column = reader.Schema.GetDataFields().FirstOrDefault(f => f.Name == field)
                ?? throw new DataException($"Parquet input '{path}' has no column \"{field}\" (it has {string.Join(", ", reader.Schema.GetDataFields().Select(f => f.Name))}). Name the text column with --field.");
            if (column.ClrType != typeof(string) && column.ClrType != typeof(ReadOnlyMemory<char>))
                throw new DataException($"Parquet input '{path}': column \"{field}\" holds {column.ClrType.Name}, not strings. Name the text column with --field.");
        }
        catch (Exception e) when (e is not DataException and (IOException or InvalidDataException or NotSupportedException or InvalidOperationException or ArgumentException))
        {
            throw new DataException($"Input '{path}' is not a readable Parquet file ({e.Message}).");
        }
        try
        {
            var row = 0L;
            for (var g = 0; g < reader.RowGroupCount; g++)
            {
                string?[] values;
                try
                {
                    using var group = reader.OpenRowGroupReader(g);
                    values = new string?[group.RowCount];
                    group.ReadAsync(column, values.AsMemory()!, null).AsTask().GetAwaiter().GetResult();
                }
                catch (Exception e) when (e is IOException or InvalidDataException or NotSupportedException or InvalidOperationException or ArgumentException)
                {
                    throw new DataException($"Input '{path}' row group {g} cannot be read ({e.Message}).");
                }
                consumed(stream.Position);
                foreach (var v in values)
                {
                    row++;
                    if (v is null)
                        continue; // a null row is no document
                    yield return new TextPiece(StrictUtf8(v, path, $"row {row}"), true, path, $"row {row}", -1);
                }
            }
        }
        finally
        {
            reader.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    static byte[] StrictUtf8(string text, string path, string where)
    {
        try
        {
            return Strict.GetBytes(text);
        }
        catch (EncoderFallbackException)
        {
            throw new DataException($"Input '{path}' {where} holds a lone UTF-16 surrogate, which is not text. Fix the record or remove it.");
        }
    }

    /// <summary>UTF-8 that throws on invalid input instead of substituting U+FFFD.</summary>
    public static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
}
