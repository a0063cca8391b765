// Safetensors files (F32 only): 8-byte little-endian header length, a JSON header mapping names to dtype,
// shape and data_offsets plus "__metadata__" strings, then raw little-endian data. The Hugging Face format,
// so weights move between SddIlgpu and PyTorch; the reference script writes its fixtures this way. The one
// reader checks every rule of the format (as Hugging Face's Rust reader does) before any value is used.
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using SddIlgpu.Tensors;

namespace SddIlgpu.Layers;

/// <summary>The content of a safetensors file: name → tensor and the metadata strings.</summary>
public sealed record SafetensorsFile(IReadOnlyDictionary<string, SafetensorsTensor> Tensors,
    IReadOnlyDictionary<string, string> Metadata);

/// <summary>
/// One F32 tensor of a file: its dimensions as stored (any rank, zeros allowed; <c>[]</c> is a scalar) and its
/// values, row-major.
/// </summary>
public sealed record SafetensorsTensor(string Name, IReadOnlyList<long> Dims, float[] Data)
{
    /// <summary>A tensor of the given shape and values.</summary>
    public SafetensorsTensor(string name, Shape shape, float[] data) : this(name, [.. shape.ToArray().Select(d => (long)d)], data)
    {
    }

    /// <summary>Whether the stored dimensions are exactly <paramref name="shape"/> (a scalar <c>[]</c> counts as (1)).</summary>
    public bool HasShape(Shape shape) =>
        Dims.Count == 0 ? shape == new Shape(1) : Dims.SequenceEqual(shape.ToArray().Select(d => (long)d));

    /// <summary>The dimensions as a <see cref="Tensors.Shape"/>: rank 1 to 4 (a scalar becomes (1)), every dimension positive.</summary>
    /// <exception cref="InvalidDataException">The tensor is empty, of rank above 4, or has a dimension above 2^31 − 1.</exception>
    public Shape Shape => Dims.Count == 0 ? new Shape(1)
        : Dims.Count <= 4 && Dims.All(d => d is > 0 and <= int.MaxValue) ? new Shape([.. Dims.Select(d => (int)d)])
        : throw new InvalidDataException($"Tensor '{Name}' has shape {DimsText}, which SddIlgpu cannot hold (rank 1 to 4, every dimension positive).");

    /// <summary>The dimensions as text, e.g. (2, 0, 3).</summary>
    public string DimsText => "(" + string.Join(", ", Dims) + ")";
}

public static class Safetensors
{
    /// <summary>Writes the tensors (in the given order) and metadata to a temporary file, then renames it over <paramref name="path"/>.</summary>
    /// <exception cref="ArgumentException">A tensor's values do not match its shape, or a name is repeated or reserved.</exception>
    public static void Write(string path, IEnumerable<(string Name, Shape Shape, float[] Data)> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        Write(path, tensors.Select(t => new SafetensorsTensor(t.Name, t.Shape, t.Data)), metadata);
    }

    /// <summary>Writes the tensors (any rank, zero-size allowed) in the given order; see the other overload.</summary>
    public static void Write(string path, IEnumerable<SafetensorsTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensors);
        var list = tensors.ToList();
        var json = Header(list, metadata);
        var padded = (json.Length + 7) / 8 * 8;
        AtomicFile.Write(path, f =>
        {
            Span<byte> len = stackalloc byte[8];
            BitConverter.TryWriteBytes(len, (ulong)padded);
            f.Write(len);
            f.Write(json);
            for (var i = json.Length; i < padded; i++)
                f.WriteByte((byte)' ');
            foreach (var t in list)
                f.Write(MemoryMarshal.AsBytes(t.Data.AsSpan()));
        });
    }

    static byte[] Header(List<SafetensorsTensor> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata)
                    w.WriteString(k, v);
                w.WriteEndObject();
            }
            var names = new HashSet<string>(StringComparer.Ordinal) { "__metadata__" };
            long offset = 0;
            foreach (var t in tensors)
            {
                long numel = 1;
                foreach (var d in t.Dims)
                    numel = d >= 0 ? checked(numel * d) : throw new ArgumentException($"Tensor '{t.Name}' has a negative dimension {t.DimsText}.");
                if (t.Data.Length != numel)
                    throw new ArgumentException($"Tensor '{t.Name}' has shape {t.DimsText} ({numel} values) but {t.Data.Length} values were given.");
                if (!names.Add(t.Name))
                    throw new ArgumentException($"Tensor '{t.Name}' is given twice or uses the reserved name __metadata__.");
                var bytes = 4L * t.Data.Length;
                w.WriteStartObject(t.Name);
                w.WriteString("dtype", "F32");
                w.WriteStartArray("shape");
                foreach (var d in t.Dims)
                    w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + bytes);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += bytes;
            }
            w.WriteEndObject();
        }
        return buffer.ToArray();
    }

    /// <summary>
    /// Reads a file and checks everything the format says before any value is used: the header length (at most
    /// <see cref="MaxHeaderBytes"/> and within the file), a UTF-8 JSON object without duplicate keys, for each
    /// tensor a known dtype, a shape of non-negative integers (0 allowed; <c>[]</c> is a scalar), data_offsets
    /// <c>[begin, end]</c> spanning exactly numel × dtype size, offsets that tile the data section with no gap,
    /// overlap or trailing byte, and an optional <c>__metadata__</c> map of strings.
    /// </summary>
    /// <exception cref="InvalidDataException">The file breaks the format (or holds a dtype other than F32); the message names the file and the field.</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    public static SafetensorsFile Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return Parse(File.ReadAllBytes(path), path);
    }

    /// <summary>Largest accepted header, as in Hugging Face's reader (100 MB).</summary>
    public const int MaxHeaderBytes = 100_000_000;

    /// <summary>The dtypes of the format and their sizes in bits (sub-byte types pack several per byte).</summary>
    static readonly Dictionary<string, int> DtypeBits = new(StringComparer.Ordinal)
    {
        ["BOOL"] = 8, ["U8"] = 8, ["I8"] = 8, ["F8_E5M2"] = 8, ["F8_E4M3"] = 8, ["F8_E8M0"] = 8, ["F4"] = 4, ["F6_E2M3"] = 6,
        ["F6_E3M2"] = 6, ["I16"] = 16, ["U16"] = 16, ["F16"] = 16, ["BF16"] = 16, ["I32"] = 32, ["U32"] = 32, ["F32"] = 32,
        ["F64"] = 64, ["I64"] = 64, ["U64"] = 64, ["C64"] = 64,
    };

    static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Parses the bytes of a safetensors file; <paramref name="source"/> names it in errors. See <see cref="Read"/>.</summary>
    /// <exception cref="InvalidDataException">The bytes break the format; the message names the source and the field.</exception>
    public static SafetensorsFile Parse(ReadOnlySpan<byte> bytes, string source)
    {
        ArgumentNullException.ThrowIfNull(source);
        InvalidDataException Bad(string what) => new($"{source}: {what}");
        if (bytes.Length < 8)
            throw Bad($"{bytes.Length} bytes is too short for a safetensors file (an 8-byte header length comes first); the file is truncated or not safetensors.");
        var headerLength = BitConverter.ToUInt64(bytes[..8]);
        if (headerLength > MaxHeaderBytes)
            throw Bad($"the header length is {headerLength} bytes, above the {MaxHeaderBytes}-byte limit; the file is not safetensors or is corrupt.");
        if (headerLength > (ulong)(bytes.Length - 8))
            throw Bad($"the header claims {headerLength} bytes but only {bytes.Length - 8} follow; the file is truncated or not safetensors.");
        var headerBytes = bytes.Slice(8, (int)headerLength);
        try
        {
            StrictUtf8.GetCharCount(headerBytes);
        }
        catch (DecoderFallbackException e)
        {
            throw Bad($"the header is not valid UTF-8 (byte {8 + e.Index} of the file); the file is corrupt.");
        }
        if (headerBytes.Length == 0 || headerBytes[0] != (byte)'{')
            throw Bad("the header does not start with '{' (a JSON object); the file is not safetensors or is corrupt.");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(headerBytes.ToArray());
        }
        catch (JsonException e)
        {
            throw Bad($"the header is not valid JSON ({OneLine(e.Message)}); the file is corrupt.");
        }
        using (doc)
        {
            var dataStart = 8 + (int)headerLength;
            var data = bytes[dataStart..];
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var entries = new List<(string Name, string Dtype, long[] Dims, long Begin, long End)>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            try
            {
                foreach (var property in doc.RootElement.EnumerateObject())
                {
                    if (!seen.Add(property.Name))
                        throw Bad($"the header names '{Clip(property.Name)}' twice; the file is corrupt.");
                    if (property.Name == "__metadata__")
                        ReadMetadata(property.Value, metadata, Bad);
                    else
                        entries.Add(ReadEntry(property.Name, property.Value, Bad));
                }
            }
            catch (InvalidOperationException e)
            {
                // JsonElement's string reads throw this for an escaped lone surrogate such as "\ud800".
                throw Bad($"the header holds a string that is not valid Unicode ({OneLine(e.Message)}); the file is corrupt.");
            }
            CheckTiling(entries, data.Length, Bad);
            var tensors = new Dictionary<string, SafetensorsTensor>(entries.Count, StringComparer.Ordinal);
            foreach (var (name, _, dims, begin, end) in entries)
            {
                var values = new float[(end - begin) / 4];
                MemoryMarshal.Cast<byte, float>(data[(int)begin..(int)end]).CopyTo(values);
                tensors[name] = new SafetensorsTensor(name, dims, values);
            }
            return new SafetensorsFile(tensors, metadata);
        }
    }

    static void ReadMetadata(JsonElement node, Dictionary<string, string> metadata, Func<string, InvalidDataException> bad)
    {
        if (node.ValueKind == JsonValueKind.Null)
            return;
        if (node.ValueKind != JsonValueKind.Object)
            throw bad($"'__metadata__' must be an object of strings; got {Show(node)}.");
        foreach (var (key, value) in node.EnumerateObject().Select(p => (p.Name, p.Value)))
        {
            if (value.ValueKind != JsonValueKind.String)
                throw bad($"'__metadata__'.'{Clip(key)}' must be a string; got {Show(value)}.");
            if (!metadata.TryAdd(key, value.GetString()!))
                throw bad($"'__metadata__' names '{Clip(key)}' twice; the file is corrupt.");
        }
    }

    static (string, string, long[], long, long) ReadEntry(string name, JsonElement entry, Func<string, InvalidDataException> bad)
    {
        var tensor = $"tensor '{Clip(name)}'";
        if (entry.ValueKind != JsonValueKind.Object)
            throw bad($"{tensor} must be an object with dtype, shape and data_offsets; got {Show(entry)}.");
        JsonElement? dtypeNode = null, shapeNode = null, offsetsNode = null;
        foreach (var p in entry.EnumerateObject())
        {
            switch (p.Name)
            {
                case "dtype" when dtypeNode is null:
                    dtypeNode = p.Value;
                    break;
                case "shape" when shapeNode is null:
                    shapeNode = p.Value;
                    break;
                case "data_offsets" when offsetsNode is null:
                    offsetsNode = p.Value;
                    break;
                case "dtype" or "shape" or "data_offsets":
                    throw bad($"{tensor} gives '{p.Name}' twice.");
                default:
                    throw bad($"{tensor} has an unknown field '{Clip(p.Name)}' (only dtype, shape and data_offsets are allowed).");
            }
        }
        if (dtypeNode is not { } dtypeValue || shapeNode is not { } shapeValue || offsetsNode is not { } offsetsValue)
            throw bad($"{tensor} lacks {(dtypeNode is null ? "dtype" : shapeNode is null ? "shape" : "data_offsets")}.");

        if (dtypeValue.ValueKind != JsonValueKind.String)
            throw bad($"{tensor} dtype must be a string such as \"F32\"; got {Show(dtypeValue)}.");
        var dtype = dtypeValue.GetString()!;
        if (!DtypeBits.TryGetValue(dtype, out var bits))
            throw bad($"{tensor} has unknown dtype '{Clip(dtype)}'; known: {string.Join(", ", DtypeBits.Keys)}.");
        if (dtype != "F32")
            throw bad($"{tensor} is {dtype}; only F32 is supported (convert with tensor.float() before saving).");

        if (shapeValue.ValueKind != JsonValueKind.Array)
            throw bad($"{tensor} shape must be an array of non-negative integers; got {Show(shapeValue)}.");
        var dims = new long[shapeValue.GetArrayLength()];
        ulong numel = 1;
        var overflow = false;
        var i = 0;
        foreach (var d in shapeValue.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out var dim) || dim < 0)
                throw bad($"{tensor} shape[{i}] must be a non-negative integer below 2^63; got {Show(d)}.");
            dims[i++] = dim;
            overflow |= !overflow && numel != 0 && (ulong)dim > ulong.MaxValue / numel;
            numel = overflow ? 0 : numel * (ulong)dim;
        }
        if (overflow)
            throw bad($"{tensor} shape ({string.Join(", ", dims)}) has more elements than 2^64; the file is corrupt.");

        if (offsetsValue.ValueKind != JsonValueKind.Array || offsetsValue.GetArrayLength() != 2)
            throw bad($"{tensor} data_offsets must be two integers [begin, end]; got {Show(offsetsValue)}.");
        var offsets = new long[2];
        for (var k = 0; k < 2; k++)
        {
            var o = offsetsValue[k];
            if (o.ValueKind != JsonValueKind.Number || !o.TryGetInt64(out offsets[k]) || offsets[k] < 0)
                throw bad($"{tensor} data_offsets[{k}] must be a non-negative integer below 2^63; got {Show(o)}.");
        }
        var (begin, end) = (offsets[0], offsets[1]);
        if (end < begin)
            throw bad($"{tensor} data_offsets [{begin}, {end}] end before they begin.");
        var bytesNeeded = numel > ulong.MaxValue / (ulong)bits ? ulong.MaxValue : numel * (ulong)bits / 8;
        if ((ulong)(end - begin) != bytesNeeded)
            throw bad($"{tensor} of shape ({string.Join(", ", dims)}) and dtype {dtype} needs {(bytesNeeded == ulong.MaxValue ? "more than 2^64" : bytesNeeded.ToString(CultureInfo.InvariantCulture))} bytes but its data_offsets [{begin}, {end}] span {end - begin}.");
        return (name, dtype, dims, begin, end);
    }

    /// <summary>The tensors' byte ranges, in offset order, must cover [0, dataLength) exactly: no gap, no overlap, no trailing byte.</summary>
    static void CheckTiling(List<(string Name, string Dtype, long[] Dims, long Begin, long End)> entries, long dataLength, Func<string, InvalidDataException> bad)
    {
        long covered = 0;
        string? previous = null;
        foreach (var e in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            var tensor = $"tensor '{Clip(e.Name)}'";
            if (e.End > dataLength)
                throw bad($"{tensor} data_offsets [{e.Begin}, {e.End}] run past the {dataLength} data bytes; the file is truncated.");
            if (e.Begin < covered)
                throw bad($"{tensor} data_offsets [{e.Begin}, {e.End}] overlap tensor '{Clip(previous!)}' (which ends at byte {covered}); the file is corrupt.");
            if (e.Begin > covered)
                throw bad($"{tensor} data_offsets [{e.Begin}, {e.End}] leave a gap of {e.Begin - covered} bytes after byte {covered}; the data section must be tiled exactly.");
            covered = e.End;
            previous = e.Name;
        }
        if (covered != dataLength)
            throw bad($"{dataLength - covered} bytes follow the last tensor (which ends at data byte {covered}); trailing bytes are not allowed, the file is corrupt.");
    }

    /// <summary>A JSON value for an error message: on one line, at most 40 characters.</summary>
    static string Show(JsonElement e) => Clip(OneLine(e.GetRawText()));

    static string Clip(string s) => s.Length <= 40 ? OneLine(s) : OneLine(s[..37]) + "...";

    static string OneLine(string s) => s.ReplaceLineEndings(" ").Replace('\t', ' ');

    /// <summary>Writes every parameter (names of spec §4, prefixed) with the model config in the metadata.</summary>
    public static void Save(string path, ModelWeights weights, IReadOnlyDictionary<string, string>? metadata = null, string prefix = "")
    {
        ArgumentNullException.ThrowIfNull(weights);
        var all = weights.Values.ToArray();
        var meta = new Dictionary<string, string>(metadata ?? new Dictionary<string, string>()) { ["config"] = weights.Config.ToJson() };
        Write(path, weights.Parameters.Select(p => (prefix + p.Name, p.Shape, all.AsSpan((int)p.Value.Offset, (int)p.Shape.Length).ToArray())), meta);
    }

    /// <summary>
    /// Uploads <c>prefix + name</c> for every parameter. Every parameter must be present with its exact shape,
    /// and no other tensor may carry the prefix; the error lists what is missing, extra or mis-shaped.
    /// </summary>
    public static void Load(ModelWeights weights, SafetensorsFile file, string prefix = "")
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(file);
        var problems = new List<string>();
        foreach (var p in weights.Parameters)
        {
            if (!file.Tensors.TryGetValue(prefix + p.Name, out var t))
                problems.Add($"missing '{prefix + p.Name}' {p.Shape}");
            else if (!t.HasShape(p.Shape))
                problems.Add($"'{prefix + p.Name}' is {t.DimsText}, expected {p.Shape}");
        }
        foreach (var name in file.Tensors.Keys.Where(n => n.StartsWith(prefix, StringComparison.Ordinal)))
            if (!weights.Contains(name[prefix.Length..]))
                problems.Add($"extra '{name}' (no such parameter in a {weights.Config.Describe()} model)");
        if (problems.Count > 0)
            throw new InvalidDataException("The weights do not fit the model: " + string.Join("; ", problems) + ".");
        var all = new float[weights.Count];
        foreach (var p in weights.Parameters)
            file.Tensors[prefix + p.Name].Data.CopyTo(all, p.Value.Offset);
        weights.Upload(all);
    }
}
