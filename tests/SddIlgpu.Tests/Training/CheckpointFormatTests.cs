// Checkpoint metadata is read by typed readers that name the bad field, checked for range and covered by the
// SHA-256 (issue 10 §3). Each observed case gets its outcome: an edited field is refused as corrupt; the same
// edit with a re-computed checksum (a forged file) is refused naming the field; a valid file loads unchanged.
using System.Text.Json.Nodes;
using NUnit.Framework;
using SddIlgpu.Layers;
using SddIlgpu.Tests.Support;
using SddIlgpu.Training;
using SddIlgpu.Training.Checkpoints;
using SddIlgpu.Training.Data;

namespace SddIlgpu.Tests.Training;

public sealed class CheckpointFormatTests
{
    string dir = null!;

    [SetUp]
    public void MakeDir() => dir = Directory.CreateTempSubdirectory("sdd-ckpt-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(dir, recursive: true);

    [Test]
    public void AValidCheckpointRoundTripsItsStateAndWeights()
    {
        var path = Path.Combine(dir, "valid.safetensors");
        File.WriteAllBytes(path, SmallCheckpoint.Bytes);
        var state = Checkpoint.ReadState(path);
        Assert.That(state.Step, Is.EqualTo(2));
        Assert.That(state.AdamStep, Is.EqualTo(2));
        Assert.That(state.Train, Is.EqualTo(SmallCheckpoint.Train));
        var (tokenizer, start) = TokenizerJson.Read(state.TokenizerJson);
        Assert.That(state.Model, Is.EqualTo(SmallCheckpoint.Model with { Vocab = tokenizer.VocabSize }));
        Assert.That(TokenizerJson.Write(tokenizer, start), Is.EqualTo(state.TokenizerJson));
        var meta = Safetensors.Read(path).Metadata;
        Assert.That(meta["format_version"], Is.EqualTo("2"));
        Assert.That(meta["train_config"], Does.Contain("\"grad_accum\":1").And.Contain("\"lr\":0.003"), "snake_case keys");
        using var weights = new ModelWeights(TestDevices.Get("cpu"), state.Model);
        Checkpoint.Load(path, weights, null);
        Check.BitIdentical(weights.Values.ToArray(), SmallCheckpoint.Weights, "weights");
    }

    string Edit(Action<Dictionary<string, string>> edit, bool resign)
    {
        var path = Path.Combine(dir, $"edited-{Guid.NewGuid():N}.safetensors");
        File.WriteAllBytes(path, CheckpointMutator.WithMetadata(SmallCheckpoint.Bytes, edit, resign));
        return path;
    }

    static string Refused(string path)
    {
        var e = Assert.Throws<CheckpointException>(() => Checkpoint.ReadState(path))!;
        Assert.That(e.Message, Does.Contain(path).And.Not.Contain('\n'));
        return e.Message;
    }

    [TestCase("step", "-5", "metadata field 'step' must be an integer from 0 to 2147483647; got \"-5\"")]
    [TestCase("step", "x", "metadata field 'step' must be an integer")]
    [TestCase("step", "2147483648", "metadata field 'step' must be an integer")]
    [TestCase("adam_step", "1.5", "metadata field 'adam_step' must be an integer")]
    [TestCase("train_position", "-1", "metadata field 'train_position' must be an integer from 0")]
    [TestCase("format_version", "x", "metadata field 'format_version' must be an integer")]
    [TestCase("seed", "-1", "metadata field 'seed' is invalid: must be an integer between 0 and 18446744073709551615")]
    [TestCase("seed", "8", "metadata field 'seed' is 8 but train_config says 7")]
    [TestCase("world_size", "0", "metadata field 'world_size' must be an integer from 1 to 2147483647; got \"0\"")]
    public void AnEditedNumberIsCorruptAndAForgedOneIsNamed(string key, string value, string forged)
    {
        if (key != "format_version")
            Assert.That(Refused(Edit(m => m[key] = value, resign: false)), Does.Contain("is corrupt: its metadata or tensors do not match the SHA-256"));
        Assert.That(Refused(Edit(m => m[key] = value, resign: true)), Does.Contain(forged));
    }

    [TestCase("\"d_model\":8", "\"d_model\":\"x\"", "'model_config' is invalid: Model config key 'd_model' must be an integer between 1 and 2147483647")]
    [TestCase("\"d_model\":8", "\"d_model\":1.5", "Model config key 'd_model' must be an integer")]
    [TestCase("\"d_model\":8", "\"d_model\":null", "Model config JSON lacks 'd_model'")]
    [TestCase("\"d_model\":8", "\"d_model\":-8", "d_model must be positive; got -8")]
    [TestCase("\"residual\":\"post\"", "\"residual\":5", "Model config key 'residual' must be a string: pre, post or deepnorm")]
    [TestCase("\"vocab\":", "\"vocabulary\":", "Unknown model config key 'vocabulary'")]
    [TestCase("\"n_layer\":1", "\"n_layer\":1000000", "too few for the 1000000 layers")]
    [TestCase("\"ffn_hidden\":16", "\"ffn_hidden\":24", "tensor 'blocks.0.ffn.w_up.weight' has shape (16, 8), its model needs (24, 8)")]
    public void AForgedModelConfigIsNamed(string from, string to, string expected)
    {
        Assert.That(SmallCheckpoint.Metadata["model_config"], Does.Contain(from));
        Assert.That(Refused(Edit(m => m["model_config"] = m["model_config"].Replace(from, to, StringComparison.Ordinal), resign: true)), Does.Contain(expected));
    }

    [TestCase("\"lr\":0.003", "\"lr\":-1", "'train_config' is invalid: --lr must be a positive number; got -1")]
    [TestCase("\"lr\":0.003", "\"lr\":\"x\"", "Training config key 'lr'")]
    [TestCase("\"steps\":6", "\"steps\":-5", "--steps must be positive")]
    [TestCase("\"steps\":6", "\"steps\":6,\"stepz\":6", "'stepz'")]
    [TestCase("\"lr\":0.003,", "", "Training config JSON lacks 'lr'")]
    public void AForgedTrainConfigIsNamed(string from, string to, string expected)
    {
        Assert.That(SmallCheckpoint.Metadata["train_config"], Does.Contain(from));
        Assert.That(Refused(Edit(m => m["train_config"] = m["train_config"].Replace(from, to, StringComparison.Ordinal), resign: true)), Does.Contain(expected));
    }

    [Test]
    public void AForgedTokenizerIsNamed()
    {
        var json = SmallCheckpoint.Metadata["tokenizer"];
        Assert.That(Refused(Edit(m => m["tokenizer"] = json[..(json.Length / 2)], resign: true)), Does.Contain("'tokenizer' is invalid: The tokenizer JSON is malformed"));
        Assert.That(Refused(Edit(m => m["tokenizer"] = """{"kind":"byte"}""", resign: true)), Does.Contain("'tokenizer' has 256 tokens but model_config says vocab"));
        Assert.That(Refused(Edit(m => m["tokenizer"] = """{"kind":"char"}""", resign: true)), Does.Contain("lacks its vocabulary ('code_points')"));
        Assert.That(Refused(Edit(m => m["tokenizer"] = """{"kind":5}""", resign: true)), Does.Contain("'tokenizer' is invalid"));
        Assert.That(Refused(Edit(m => m.Remove("tokenizer"), resign: true)), Does.Contain("lacks 'tokenizer' in its metadata"));
    }

    [Test]
    public void AnOlderFormatVersionIsRefusedWithTheReason()
    {
        Assert.That(Refused(Edit(m => m["format_version"] = "1", resign: false)),
            Does.Contain("format version 1; this sdd reads version 2 (older versions did not checksum their metadata)"));
        Assert.That(Refused(Edit(m => m["format"] = "other", resign: true)), Does.Contain("is not an SddIlgpu checkpoint"));
    }

    [Test]
    public void ChangedTensorDataIsCorrupt()
    {
        var bytes = SmallCheckpoint.Bytes.ToArray();
        bytes[^3] ^= 1;
        var path = Path.Combine(dir, "flipped.safetensors");
        File.WriteAllBytes(path, bytes);
        Assert.That(Refused(path), Does.Contain("is corrupt"));
    }

    /// <summary>The cases through the tool: one line on stderr, exit 1, no stack trace.</summary>
    [Test]
    public void TheToolPrintsOneLineAndExitsOne()
    {
        var edited = Edit(m => m["step"] = "-5", resign: false);
        var forged = Edit(m => m["model_config"] = m["model_config"].Replace("\"d_model\":8", "\"d_model\":\"x\"", StringComparison.Ordinal), resign: true);
        var header = Path.Combine(dir, "dtype.safetensors");
        var bytes = SmallCheckpoint.Bytes.ToArray();
        var at = bytes.AsSpan().IndexOf("\"dtype\":\"F32\""u8);
        "\"dtype\":5    "u8.CopyTo(bytes.AsSpan(at));
        File.WriteAllBytes(header, bytes);
        foreach (var (path, expected) in new[] { (edited, "is corrupt"), (forged, "metadata field 'model_config' is invalid"), (header, "dtype must be a string") })
        {
            var resume = SddIlgpu.Tests.Cli.CliRunner.Run("train", "--resume", path, "--device", "cpu", "--steps", "3", "--quiet", "--out", Path.Combine(dir, "out"));
            var sample = SddIlgpu.Tests.Cli.CliRunner.Run("sample", path, "--device", "cpu", "--tokens", "3");
            foreach (var r in new[] { resume, sample })
            {
                Assert.That(r.Code, Is.EqualTo(1), r.Err);
                Assert.That(r.Err.TrimEnd(), Does.StartWith("sdd: Checkpoint").And.Contain(expected).And.Not.Contain('\n'));
            }
        }
    }

    [Test]
    public void AnUnreadableFileIsOneCheckpointException()
    {
        var path = Path.Combine(dir, "trailing.safetensors");
        File.WriteAllBytes(path, [.. SmallCheckpoint.Bytes, 0]);
        Assert.That(Refused(path), Does.Contain("unreadable (truncated or corrupt)").And.Contain("trailing bytes are not allowed"));
        Assert.That(Refused(Path.Combine(dir, "missing.safetensors")), Does.Contain("does not exist"));
    }
}

/// <summary>A real checkpoint of a tiny model after two training steps on the cpu device, made once.</summary>
static class SmallCheckpoint
{
    static readonly Lazy<(byte[] Bytes, float[] Weights)> Made = new(Make);

    public static readonly ModelConfig Model = new(0, DModel: 8, NLayer: 1, NHead: 2, NKvHead: 1, FfnHidden: 16, SeqLen: 8,
        Residual: Residual.Post, Linear: LinearKind.SddCode);

    public static readonly TrainConfig Train = new()
    {
        Steps = 6, Batch = 2, Lr = 3e-3, Warmup = 1, EvalEvery = 0, EvalBatches = 1, Seed = 7, CheckpointEvery = 0,
    };

    public static byte[] Bytes => Made.Value.Bytes;
    public static float[] Weights => Made.Value.Weights;

    public static IReadOnlyDictionary<string, string> Metadata => Safetensors.Parse(Bytes, "checkpoint").Metadata;

    static (byte[], float[]) Make()
    {
        var corpus = TextCorpus.FromText(GeneratedCorpus.Generate(3000), GeneratedCorpus.Name, "char");
        var outDir = Directory.CreateTempSubdirectory("sdd-small-ckpt-").FullName;
        try
        {
            using var t = Trainer.Create(TestDevices.Get("cpu"), Model with { Vocab = corpus.Tokenizer.VocabSize }, Train, corpus, outDir,
                new TrainerOptions { WritePlot = false, StopAtStep = 2 });
            t.Run();
            return (File.ReadAllBytes(t.SaveCheckpoint()), t.Weights.Values.ToArray());
        }
        finally
        {
            Directory.Delete(outDir, recursive: true);
        }
    }
}

/// <summary>Rewrites a safetensors file's header: metadata edits (optionally re-signed with the checkpoint checksum).</summary>
static class CheckpointMutator
{
    /// <summary>The file with its metadata edited; <paramref name="resign"/> recomputes "sha256" as a forger would.</summary>
    public static byte[] WithMetadata(byte[] file, Action<Dictionary<string, string>> edit, bool resign)
    {
        var parsed = Safetensors.Parse(file, "original");
        var meta = new Dictionary<string, string>(parsed.Metadata, StringComparer.Ordinal);
        edit(meta);
        if (resign)
            meta["sha256"] = Checkpoint.Checksum(meta, parsed.Tensors.Values);
        var headerLength = (int)BitConverter.ToUInt64(file, 0);
        var header = JsonNode.Parse(file.AsSpan(8, headerLength))!.AsObject();
        var m = new JsonObject();
        foreach (var (k, v) in meta)
            m[k] = v;
        header["__metadata__"] = m;
        return WithHeader(file, System.Text.Encoding.UTF8.GetBytes(header.ToJsonString()));
    }

    /// <summary>The file with its header replaced by <paramref name="header"/> (length prefix updated, data kept).</summary>
    public static byte[] WithHeader(byte[] file, ReadOnlySpan<byte> header)
    {
        var headerLength = (int)BitConverter.ToUInt64(file, 0);
        var data = file.AsSpan(8 + headerLength);
        var bytes = new byte[8 + header.Length + data.Length];
        BitConverter.TryWriteBytes(bytes.AsSpan(0, 8), (ulong)header.Length);
        header.CopyTo(bytes.AsSpan(8));
        data.CopyTo(bytes.AsSpan(8 + header.Length));
        return bytes;
    }
}
