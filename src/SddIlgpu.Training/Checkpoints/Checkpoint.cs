// A checkpoint is one safetensors file: the weights under their spec §4 names (so PyTorch's
// safetensors.torch.load_file gives a state dict), the AdamW moments as optim.m.* / optim.v.*, and in the
// metadata the format version, both configurations, the step, the data-loader position, the RNG seed, the
// tokenizer, the world size and a SHA-256 over all other metadata and all tensors (names, shapes, data). It is written to a
// temporary file and renamed. Reading trusts nothing: every field is parsed by a typed reader that names it.
using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using SddIlgpu.Layers;
using SddIlgpu.Tensors;
using SddIlgpu.Training.Data;

namespace SddIlgpu.Training.Checkpoints;

/// <summary>
/// Everything a checkpoint records besides the tensors. WorldSize is the number of data-parallel processes
/// that wrote it (1 without MPI).
/// </summary>
public sealed record CheckpointState(
    ModelConfig Model, TrainConfig Train, int Step, long TrainPosition, int AdamStep, string TokenizerJson, string DataSource,
    int WorldSize = 1);

/// <summary>A checkpoint that cannot be used: the one-line message says what is wrong and what to do.</summary>
public sealed class CheckpointException(string message, Exception? inner = null) : Exception(message.ReplaceLineEndings(" "), inner);

public static class Checkpoint
{
    public const string Format = "sdd-checkpoint";

    /// <summary>2: the SHA-256 covers the metadata and the tensor names and shapes, not only the tensor data (version 1).</summary>
    public const int Version = 2;

    /// <summary>Writes weights, moments and state to <paramref name="path"/> atomically.</summary>
    public static void Save(string path, ModelWeights weights, AdamW optimizer, CheckpointState state)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(state);
        var values = weights.Values.ToArray();
        var m = optimizer.M.ToArray();
        var v = optimizer.V.ToArray();
        var tensors = new List<SafetensorsTensor>();
        foreach (var (prefix, flat) in new[] { ("", values), ("optim.m.", m), ("optim.v.", v) })
        {
            long offset = 0;
            foreach (var p in weights.Parameters)
            {
                tensors.Add(new SafetensorsTensor(prefix + p.Name, p.Shape, flat.AsSpan((int)offset, (int)p.Shape.Length).ToArray()));
                offset += p.Shape.Length;
            }
        }
        var meta = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["format"] = Format,
            ["format_version"] = Version.ToString(CultureInfo.InvariantCulture),
            ["model_config"] = state.Model.ToJson(),
            ["train_config"] = state.Train.ToJson(),
            ["step"] = state.Step.ToString(CultureInfo.InvariantCulture),
            ["train_position"] = state.TrainPosition.ToString(CultureInfo.InvariantCulture),
            ["adam_step"] = state.AdamStep.ToString(CultureInfo.InvariantCulture),
            ["seed"] = state.Train.Seed.ToString(CultureInfo.InvariantCulture),
            ["tokenizer"] = state.TokenizerJson,
            ["data_source"] = state.DataSource,
            ["world_size"] = state.WorldSize.ToString(CultureInfo.InvariantCulture),
        };
        meta["sha256"] = Checksum(meta, tensors);
        Safetensors.Write(path, tensors, meta);
    }

    /// <summary>Reads and checks the state of a checkpoint without touching a device.</summary>
    /// <exception cref="CheckpointException">The file is missing, unreadable, corrupt, of another version, or a field is invalid.</exception>
    public static CheckpointState ReadState(string path) => Read(path).State;

    /// <summary>
    /// Loads a checkpoint into <paramref name="weights"/> and <paramref name="optimizer"/>, after checking the
    /// format, version, integrity and that the model shape matches.
    /// </summary>
    /// <exception cref="CheckpointException">As <see cref="ReadState"/>, or the checkpoint is for another model.</exception>
    public static CheckpointState Load(string path, ModelWeights weights, AdamW? optimizer)
    {
        ArgumentNullException.ThrowIfNull(weights);
        var (state, tensors) = Read(path);
        if (state.Model != weights.Config)
            throw new CheckpointException(
                $"Checkpoint '{path}' is for a different model: it holds {Describe(state.Model)} but this run builds {Describe(weights.Config)}. " +
                "Resume with the checkpoint's own configuration (leave out the model flags) or start a new run.");
        weights.Upload(Gather(tensors, weights, ""));
        if (optimizer is not null)
        {
            optimizer.M.Upload(Gather(tensors, weights, "optim.m."));
            optimizer.V.Upload(Gather(tensors, weights, "optim.v."));
            optimizer.Restore(state.AdamStep);
        }
        return state;
    }

    static (CheckpointState State, IReadOnlyDictionary<string, SafetensorsTensor> Tensors) Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
            throw new CheckpointException($"Checkpoint '{path}' does not exist. Pass the checkpoint.safetensors file written by 'sdd train --out DIR'.");
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointException($"Checkpoint '{path}' cannot be read: {e.Message}", e);
        }
        return Parse(bytes, path);
    }

    /// <summary>Checks a checkpoint's bytes as <see cref="ReadState"/> does; <paramref name="path"/> names it in errors.</summary>
    internal static (CheckpointState State, IReadOnlyDictionary<string, SafetensorsTensor> Tensors) Parse(ReadOnlySpan<byte> bytes, string path)
    {
        SafetensorsFile file;
        try
        {
            file = Safetensors.Parse(bytes, path);
        }
        catch (InvalidDataException e)
        {
            throw new CheckpointException($"Checkpoint '{path}' is unreadable (truncated or corrupt): {e.Message} Use an earlier checkpoint or start a new run.", e);
        }
        var meta = new MetadataReader(path, file.Metadata);
        if (meta.String("format") != Format)
            throw new CheckpointException($"'{path}' is not an SddIlgpu checkpoint (its metadata 'format' is '{Clip(file.Metadata["format"])}', not '{Format}').");
        var version = meta.Int("format_version", 0);
        if (version != Version)
            throw new CheckpointException($"Checkpoint '{path}' has format version {version}; this sdd reads version {Version}" +
                (version < Version ? " (older versions did not checksum their metadata). Retrain, or use the sdd release that wrote it." : ". Use the sdd release that wrote it."));
        if (!string.Equals(meta.String("sha256"), Checksum(file.Metadata, file.Tensors.Values), StringComparison.Ordinal))
            throw new CheckpointException($"Checkpoint '{path}' is corrupt: its metadata or tensors do not match the SHA-256 recorded when it was written. Use an earlier checkpoint.");

        var model = meta.Parse("model_config", ModelConfig.FromJson);
        var train = meta.Parse("train_config", json =>
        {
            var t = TrainConfig.FromJson(json, requireEveryKey: true);
            t.Validate();
            return t;
        });
        var step = meta.Int("step", 0);
        var trainPosition = meta.Long("train_position", 0);
        var adamStep = meta.Int("adam_step", 0);
        var seed = meta.Parse("seed", s => ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v
            : throw new ArgumentException("must be an integer between 0 and 18446744073709551615"));
        if (seed != train.Seed)
            throw meta.Bad("seed", $"is {seed} but train_config says {train.Seed}");
        var tokenizerJson = meta.String("tokenizer");
        var tokenizer = meta.Parse("tokenizer", Tokenizers.FromJson);
        if (tokenizer.VocabSize != model.Vocab)
            throw meta.Bad("tokenizer", $"has {tokenizer.VocabSize} tokens but model_config says vocab {model.Vocab}");
        var dataSource = meta.String("data_source");
        var worldSize = meta.Int("world_size", 1);
        CheckTensors(path, model, file.Tensors);
        return (new CheckpointState(model, train, step, trainPosition, adamStep, tokenizerJson, dataSource, worldSize), file.Tensors);
    }

    /// <summary>Every parameter, m and v tensor of the model is present with its exact shape, and nothing else (before anything is allocated).</summary>
    static void CheckTensors(string path, ModelConfig model, IReadOnlyDictionary<string, SafetensorsTensor> tensors)
    {
        string[] prefixes = ["", "optim.m.", "optim.v."];
        if ((long)model.NLayer * prefixes.Length > tensors.Count)
            throw new CheckpointException($"Checkpoint '{path}' holds {tensors.Count} tensors, too few for the {model.NLayer} layers of its model_config. The file is corrupt; use an earlier checkpoint.");
        var expected = ModelWeights.Layout(model);
        foreach (var prefix in prefixes)
            foreach (var (name, shape, _) in expected)
            {
                if (!tensors.TryGetValue(prefix + name, out var t))
                    throw new CheckpointException($"Checkpoint '{path}' lacks tensor '{prefix + name}' {shape} of its model. The file is corrupt; use an earlier checkpoint.");
                if (!t.HasShape(shape))
                    throw new CheckpointException($"Checkpoint '{path}': tensor '{prefix + name}' has shape {t.DimsText}, its model needs {shape}. The file is corrupt; use an earlier checkpoint.");
            }
        if (tensors.Count != expected.Count * prefixes.Length)
        {
            var known = prefixes.SelectMany(p => expected.Select(e => p + e.Name)).ToHashSet(StringComparer.Ordinal);
            var extra = tensors.Keys.First(k => !known.Contains(k));
            throw new CheckpointException($"Checkpoint '{path}' holds tensor '{Clip(extra)}', which its model does not have. The file is corrupt; use an earlier checkpoint.");
        }
    }

    static float[] Gather(IReadOnlyDictionary<string, SafetensorsTensor> tensors, ModelWeights weights, string prefix)
    {
        var flat = new float[weights.Values.Length];
        long offset = 0;
        foreach (var p in weights.Parameters)
        {
            tensors[prefix + p.Name].Data.CopyTo(flat, offset);
            offset += p.Shape.Length;
        }
        return flat;
    }

    /// <summary>
    /// The checkpoint's SHA-256 (lower-case hex): over every metadata entry but "sha256" in ordinal key order, then
    /// every tensor in ordinal name order (name, rank, dimensions, data), each string and block length-prefixed.
    /// </summary>
    internal static string Checksum(IReadOnlyDictionary<string, string> metadata, IEnumerable<SafetensorsTensor> tensors)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var number = new byte[8];
        void Long(long x)
        {
            BitConverter.TryWriteBytes(number, x);
            sha.AppendData(number);
        }
        void Bytes(ReadOnlySpan<byte> b)
        {
            Long(b.Length);
            sha.AppendData(b);
        }
        void Text(string s) => Bytes(Encoding.UTF8.GetBytes(s));
        foreach (var (key, value) in metadata.Where(kv => kv.Key != "sha256").OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            Text(key);
            Text(value);
        }
        foreach (var t in tensors.OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            Text(t.Name);
            Long(t.Dims.Count);
            foreach (var d in t.Dims)
                Long(d);
            Bytes(MemoryMarshal.AsBytes(t.Data.AsSpan()));
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    static string Clip(string s) => (s.Length <= 40 ? s : s[..37] + "...").ReplaceLineEndings(" ");

    static string Describe(ModelConfig c) =>
        $"vocab {c.Vocab}, d_model {c.DModel}, {c.NLayer} layers, {c.NHead} heads ({c.NKvHead} kv), ffn {c.FfnHidden}, seq_len {c.SeqLen}, {c.Residual}/{c.Linear}";

    /// <summary>Typed readers of metadata strings: each failure is a <see cref="CheckpointException"/> naming the file and the field.</summary>
    sealed class MetadataReader(string path, IReadOnlyDictionary<string, string> meta)
    {
        public CheckpointException Bad(string key, string problem, Exception? inner = null) =>
            new($"Checkpoint '{path}': metadata field '{key}' {problem}. The file was edited or is corrupt; use an earlier checkpoint.", inner);

        public string String(string key) => meta.TryGetValue(key, out var value) ? value
            : throw new CheckpointException($"Checkpoint '{path}' lacks '{key}' in its metadata: it was not written by 'sdd train' (a plain weights file cannot be resumed).");

        public int Int(string key, int min) => (int)Long(key, min, int.MaxValue);

        public long Long(string key, long min, long max = long.MaxValue)
        {
            var s = String(key);
            return long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) && v >= min && v <= max ? v
                : throw Bad(key, $"must be an integer from {min} to {max}; got \"{Clip(s)}\"");
        }

        /// <summary>Parses the field with <paramref name="parse"/>; its ArgumentException or InvalidDataException becomes the field's error.</summary>
        public T Parse<T>(string key, Func<string, T> parse)
        {
            var s = String(key);
            try
            {
                return parse(s);
            }
            catch (Exception e) when (e is ArgumentException or InvalidDataException)
            {
                throw Bad(key, "is invalid: " + e.Message.TrimEnd('.'), e);
            }
        }
    }
}
