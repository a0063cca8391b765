// Safetensors files (F32 only): 8-byte little-endian header length, a JSON header mapping names to dtype,
// shape and data_offsets plus "__metadata__" strings, then raw little-endian data. The Hugging Face format,
// so weights move between SddIlgpu and PyTorch; the reference script writes its fixtures this way.
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SddIlgpu.Tensors;

namespace SddIlgpu.Layers;

/// <summary>The content of a safetensors file: name → (shape, values) and the metadata strings.</summary>
public sealed record SafetensorsFile(IReadOnlyDictionary<string, (Shape Shape, float[] Data)> Tensors,
    IReadOnlyDictionary<string, string> Metadata);

public static class Safetensors
{
    /// <summary>Writes the tensors (in the given order) and metadata to a temporary file, then renames it over <paramref name="path"/>.</summary>
    public static void Write(string path, IEnumerable<(string Name, Shape Shape, float[] Data)> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensors);
        var list = tensors.ToList();
        var header = new JsonObject();
        if (metadata is { Count: > 0 })
        {
            var meta = new JsonObject();
            foreach (var (k, v) in metadata)
                meta[k] = v;
            header["__metadata__"] = meta;
        }
        long offset = 0;
        foreach (var (name, shape, data) in list)
        {
            if (data.Length != shape.Length)
                throw new ArgumentException($"Tensor '{name}' has shape {shape} ({shape.Length} values) but {data.Length} values were given.");
            if (header.ContainsKey(name))
                throw new ArgumentException($"Tensor '{name}' is given twice.");
            var bytes = 4L * data.Length;
            header[name] = new JsonObject
            {
                ["dtype"] = "F32",
                ["shape"] = new JsonArray(shape.ToArray().Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + bytes),
            };
            offset += bytes;
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        var padded = (json.Length + 7) / 8 * 8;
        var full = Path.GetFullPath(path);
        var temp = full + ".tmp";
        using (var f = new FileStream(temp, FileMode.Create, FileAccess.Write))
        {
            Span<byte> len = stackalloc byte[8];
            BitConverter.TryWriteBytes(len, (ulong)padded);
            f.Write(len);
            f.Write(json);
            for (var i = json.Length; i < padded; i++)
                f.WriteByte((byte)' ');
            foreach (var (_, _, data) in list)
                f.Write(MemoryMarshal.AsBytes(data.AsSpan()));
        }
        File.Move(temp, full, overwrite: true);
    }

    /// <summary>Reads a file, with errors that say what is wrong (truncated, corrupt header, non-F32 dtype).</summary>
    public static SafetensorsFile Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 8)
            throw new InvalidDataException($"{path}: {bytes.Length} bytes is too short for a safetensors file (8-byte header length first).");
        var headerLength = BitConverter.ToUInt64(bytes, 0);
        if (headerLength > (ulong)(bytes.Length - 8))
            throw new InvalidDataException($"{path}: the header claims {headerLength} bytes but only {bytes.Length - 8} follow; the file is truncated or not safetensors.");
        JsonObject header;
        try
        {
            header = JsonNode.Parse(bytes.AsSpan(8, (int)headerLength)) as JsonObject
                ?? throw new InvalidDataException($"{path}: the header is not a JSON object.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: the header is not valid JSON ({e.Message}).", e);
        }
        var dataStart = 8 + (long)headerLength;
        var dataLength = bytes.Length - dataStart;
        var metadata = new Dictionary<string, string>();
        var tensors = new Dictionary<string, (Shape, float[])>();
        foreach (var (name, node) in header)
        {
            if (name == "__metadata__")
            {
                if (node is JsonObject meta)
                    foreach (var (k, v) in meta)
                        metadata[k] = v?.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : v?.ToJsonString() ?? "";
                continue;
            }
            tensors[name] = ReadTensor(path, name, node as JsonObject, bytes, dataStart, dataLength);
        }
        return new SafetensorsFile(tensors, metadata);
    }

    static (Shape, float[]) ReadTensor(string path, string name, JsonObject? entry, byte[] bytes, long dataStart, long dataLength)
    {
        if (entry is null || entry["dtype"] is null || entry["shape"] is not JsonArray dims || entry["data_offsets"] is not JsonArray offsets || offsets.Count != 2)
            throw new InvalidDataException($"{path}: tensor '{name}' lacks dtype, shape or data_offsets.");
        var dtype = entry["dtype"]!.GetValue<string>();
        if (dtype != "F32")
            throw new InvalidDataException($"{path}: tensor '{name}' is {dtype}; only F32 is supported (convert with tensor.float() before saving).");
        var shape = dims.Count == 0 ? new Shape(1) : new Shape(dims.Select(d => d!.GetValue<int>()).ToArray());
        long begin = offsets[0]!.GetValue<long>(), end = offsets[1]!.GetValue<long>();
        if (end - begin != 4 * shape.Length)
            throw new InvalidDataException($"{path}: tensor '{name}' {shape} needs {4 * shape.Length} bytes but its data_offsets span {end - begin}.");
        if (begin < 0 || end > dataLength)
            throw new InvalidDataException($"{path}: tensor '{name}' data [{begin}, {end}) runs past the {dataLength} data bytes; the file is truncated.");
        var data = new float[shape.Length];
        MemoryMarshal.Cast<byte, float>(bytes.AsSpan((int)(dataStart + begin), (int)(end - begin))).CopyTo(data);
        return (shape, data);
    }

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
            else if (t.Shape != p.Shape)
                problems.Add($"'{prefix + p.Name}' is {t.Shape}, expected {p.Shape}");
        }
        foreach (var name in file.Tensors.Keys.Where(n => n.StartsWith(prefix, StringComparison.Ordinal)))
            if (!weights.Contains(name[prefix.Length..]))
                problems.Add($"extra '{name}' (no such parameter in a {weights.Config.Describe()} model)");
        if (problems.Count > 0)
            throw new InvalidDataException("The weights do not fit the model: " + string.Join("; ", problems) + ".");
        var all = new float[weights.Count];
        foreach (var p in weights.Parameters)
            file.Tensors[prefix + p.Name].Data.CopyTo(all, p.Value.Offset);
        weights.Values.Upload(all);
    }
}
