// A checkpoint is one safetensors file: the weights under their spec §4 names (so PyTorch's
// safetensors.torch.load_file gives a state dict), the AdamW moments as optim.m.* / optim.v.*, and in the
// metadata the format version, both configurations, the step, the data-loader position, the RNG seed, the
// tokenizer and a SHA-256 of all tensor data. It is written to a temporary file and renamed.
using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using SddIlgpu.Layers;
using SddIlgpu.Tensors;

namespace SddIlgpu.Training.Checkpoints;

/// <summary>
/// Everything a checkpoint records besides the tensors. WorldSize is the number of data-parallel processes
/// that wrote it (1 without MPI; checkpoints without the key were written by one process).
/// </summary>
public sealed record CheckpointState(
    ModelConfig Model, TrainConfig Train, int Step, long TrainPosition, int AdamStep, string TokenizerJson, string DataSource,
    int WorldSize = 1);

/// <summary>A checkpoint that cannot be used: the message says what is wrong and what to do.</summary>
public sealed class CheckpointException(string message, Exception? inner = null) : Exception(message, inner);

public static class Checkpoint
{
    public const string Format = "sdd-checkpoint";
    public const int Version = 1;

    /// <summary>Writes weights, moments and state to <paramref name="path"/> atomically.</summary>
    public static void Save(string path, ModelWeights weights, AdamW optimizer, CheckpointState state)
    {
        var values = weights.Values.ToArray();
        var m = optimizer.M.ToArray();
        var v = optimizer.V.ToArray();
        var tensors = new List<(string, Shape, float[])>();
        foreach (var (prefix, flat) in new[] { ("", values), ("optim.m.", m), ("optim.v.", v) })
        {
            long offset = 0;
            foreach (var p in weights.Parameters)
            {
                var data = flat.AsSpan((int)offset, (int)p.Shape.Length).ToArray();
                tensors.Add((prefix + p.Name, p.Shape, data));
                offset += p.Shape.Length;
            }
        }
        var meta = new Dictionary<string, string>
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
            ["sha256"] = Hash(tensors.Select(t => t.Item3)),
        };
        Safetensors.Write(path, tensors, meta);
    }

    /// <summary>Reads and checks the state of a checkpoint without touching a device.</summary>
    public static CheckpointState ReadState(string path) => Read(path).State;

    /// <summary>
    /// Loads a checkpoint into <paramref name="weights"/> and <paramref name="optimizer"/>, after checking the
    /// format, version, integrity and that the model shape matches.
    /// </summary>
    public static CheckpointState Load(string path, ModelWeights weights, AdamW? optimizer)
    {
        var (state, tensors) = Read(path);
        if (state.Model != weights.Config)
            throw new CheckpointException(
                $"Checkpoint '{path}' is for a different model: it holds {Describe(state.Model)} but this run builds {Describe(weights.Config)}. " +
                "Resume with the checkpoint's own configuration (leave out the model flags) or start a new run.");
        weights.Values.Upload(Gather(path, tensors, weights, ""));
        if (optimizer is not null)
        {
            optimizer.M.Upload(Gather(path, tensors, weights, "optim.m."));
            optimizer.V.Upload(Gather(path, tensors, weights, "optim.v."));
            optimizer.Restore(state.AdamStep);
        }
        return state;
    }

    static (CheckpointState State, IReadOnlyDictionary<string, (Shape Shape, float[] Data)> Tensors) Read(string path)
    {
        if (!File.Exists(path))
            throw new CheckpointException($"Checkpoint '{path}' does not exist. Pass the checkpoint.safetensors file written by 'sdd train --out DIR'.");
        IReadOnlyDictionary<string, (Shape Shape, float[] Data)> tensors;
        IReadOnlyDictionary<string, string> meta;
        try
        {
            var file = Safetensors.Read(path);
            (tensors, meta) = (file.Tensors, file.Metadata);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or FormatException or ArgumentException or System.Text.Json.JsonException)
        {
            throw new CheckpointException($"Checkpoint '{path}' is unreadable (truncated or corrupt): {e.Message} Use an earlier checkpoint or start a new run.", e);
        }
        string Meta(string key) => meta.TryGetValue(key, out var value) ? value
            : throw new CheckpointException($"Checkpoint '{path}' lacks '{key}' in its metadata: it was not written by 'sdd train' (a plain weights file cannot be resumed).");
        if (Meta("format") != Format)
            throw new CheckpointException($"'{path}' is not an SddIlgpu checkpoint (format '{meta["format"]}').");
        var version = int.Parse(Meta("format_version"), CultureInfo.InvariantCulture);
        if (version != Version)
            throw new CheckpointException($"Checkpoint '{path}' has format version {version}; this sdd reads version {Version}. Use the sdd release that wrote it.");
        var ordered = meta.ContainsKey("sha256") ? OrderedData(tensors, meta) : null;
        if (ordered is null || Hash(ordered) != Meta("sha256"))
            throw new CheckpointException($"Checkpoint '{path}' is corrupt: its tensor data does not match the SHA-256 recorded when it was written. Use an earlier checkpoint.");
        try
        {
            var state = new CheckpointState(
                ModelConfig.FromJson(Meta("model_config")), TrainConfig.FromJson(Meta("train_config")),
                int.Parse(Meta("step"), CultureInfo.InvariantCulture), long.Parse(Meta("train_position"), CultureInfo.InvariantCulture),
                int.Parse(Meta("adam_step"), CultureInfo.InvariantCulture), Meta("tokenizer"), Meta("data_source"),
                meta.TryGetValue("world_size", out var worldSize) ? int.Parse(worldSize, CultureInfo.InvariantCulture) : 1);
            return (state, tensors);
        }
        catch (Exception e) when (e is FormatException or System.Text.Json.JsonException or ArgumentException or OverflowException)
        {
            throw new CheckpointException($"Checkpoint '{path}' has corrupt metadata: {e.Message}", e);
        }
    }

    /// <summary>The tensors in the order the writer hashed them (weights, then m, then v, in parameter order).</summary>
    static List<float[]>? OrderedData(IReadOnlyDictionary<string, (Shape Shape, float[] Data)> tensors, IReadOnlyDictionary<string, string> meta)
    {
        if (!meta.TryGetValue("model_config", out var json))
            return null;
        var config = ModelConfig.FromJson(json);
        var names = ModelWeights.Layout(config).Select(p => p.Name);
        var list = new List<float[]>();
        foreach (var prefix in new[] { "", "optim.m.", "optim.v." })
            foreach (var n in names)
            {
                if (!tensors.TryGetValue(prefix + n, out var t))
                    return null;
                list.Add(t.Data);
            }
        return list;
    }

    static float[] Gather(string path, IReadOnlyDictionary<string, (Shape Shape, float[] Data)> tensors, ModelWeights weights, string prefix)
    {
        var flat = new float[weights.Values.Length];
        long offset = 0;
        foreach (var p in weights.Parameters)
        {
            if (!tensors.TryGetValue(prefix + p.Name, out var t))
                throw new CheckpointException($"Checkpoint '{path}' lacks tensor '{prefix + p.Name}'.");
            if (t.Shape != p.Shape)
                throw new CheckpointException($"Checkpoint '{path}': tensor '{prefix + p.Name}' has shape {t.Shape}, the model needs {p.Shape}.");
            t.Data.CopyTo(flat, offset);
            offset += p.Shape.Length;
        }
        return flat;
    }

    static string Hash(IEnumerable<float[]> data)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var d in data)
            sha.AppendData(MemoryMarshal.AsBytes(d.AsSpan()));
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    static string Describe(ModelConfig c) =>
        $"vocab {c.Vocab}, d_model {c.DModel}, {c.NLayer} layers, {c.NHead} heads ({c.NKvHead} kv), ffn {c.FfnHidden}, seq_len {c.SeqLen}, {c.Residual}/{c.Linear}";
}
