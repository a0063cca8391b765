// Untrusted files never crash the tool (issue 10 §3): a seeded loop mutates a real small checkpoint (its header,
// metadata and data) and the JSON the tool reads back (tokenizer, model and training configuration, log lines)
// thousands of times — byte flips, inserts, deletes, truncations, and JSON-aware edits (wrong types, nulls, huge,
// negative and fractional numbers, numbers as strings, missing and repeated keys, metadata re-signed as a forger
// would) — and asserts that every load either succeeds or throws the one expected exception with a one-line
// message. Nothing else may escape.
using System.Text;
using System.Text.Json;
using NUnit.Framework;
using SddIlgpu.Layers;
using SddIlgpu.Tests.Support;
using SddIlgpu.Training;
using SddIlgpu.Training.Checkpoints;
using SddIlgpu.Training.Data;
using SddIlgpu.Training.Metrics;

namespace SddIlgpu.Tests.Training;

/// <summary>
/// One untrusted input: its valid bytes, how the tool loads it, the one exception type a bad input may raise, and
/// its format-aware mutators (used besides the generic byte-level ones).
/// </summary>
public sealed record MutationTarget(string Name, byte[] Valid, Action<byte[]> Load, Type Expected, IReadOnlyList<Func<byte[], Random, byte[]>> Mutators);

public sealed class MutationTests
{
    string dir = null!;

    [SetUp]
    public void MakeDir() => dir = Directory.CreateTempSubdirectory("sdd-mutate-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(dir, recursive: true);

    /// <summary>
    /// The inputs under test. The token cache (branch `text` gives it a header) belongs here as one more target:
    /// its bytes, TextCorpus's cache reader as Load, and the exception (or re-encode with a warning) it promises.
    /// </summary>
    IEnumerable<(MutationTarget Target, int Iterations)> Targets()
    {
        var checkpoint = SmallCheckpoint.Bytes;
        var path = Path.Combine(dir, "checkpoint.safetensors");
        var device = TestDevices.Get("cpu");
        Func<byte[], Random, byte[]>[] header = [Json.InHeader(Json.ReplaceValue), Json.InHeader(Json.DeleteProperty), Json.InHeader(Json.RepeatProperty),
            Json.InHeader(Json.Truncate), HeaderLength, HeaderByte];
        yield return (new MutationTarget("checkpoint", checkpoint, bytes =>
        {
            // Parsing from memory is what ReadState does after reading the file; accepted inputs also go the whole way.
            Checkpoint.Parse(bytes, path);
            File.WriteAllBytes(path, bytes);
            var state = Checkpoint.ReadState(path);
            Tokenizers.FromJson(state.TokenizerJson);
            using var weights = new ModelWeights(device, state.Model);
            Checkpoint.Load(path, weights, null);
        }, typeof(CheckpointException), [.. header, Metadata(resign: true), Metadata(resign: true), Metadata(resign: false)]), 3000);

        yield return (new MutationTarget("safetensors", checkpoint, bytes => Safetensors.Parse(bytes, "file.safetensors"),
            typeof(InvalidDataException), header), 1500);

        var meta = SmallCheckpoint.Metadata;
        Func<byte[], Random, byte[]>[] json = [Json.ReplaceValue, Json.ReplaceValue, Json.DeleteProperty, Json.RepeatProperty, Json.Truncate];
        yield return (new MutationTarget("tokenizer JSON", Encoding.UTF8.GetBytes(meta["tokenizer"]),
            bytes => Tokenizers.FromJson(Encoding.UTF8.GetString(bytes)), typeof(InvalidDataException), json), 1000);
        yield return (new MutationTarget("model config JSON", Encoding.UTF8.GetBytes(meta["model_config"]),
            bytes => ModelConfig.FromJson(Encoding.UTF8.GetString(bytes)), typeof(ArgumentException), json), 1000);
        yield return (new MutationTarget("train config JSON", Encoding.UTF8.GetBytes(meta["train_config"]),
            bytes => TrainConfig.FromJson(Encoding.UTF8.GetString(bytes)).Validate(), typeof(ArgumentException), json), 1000);

        var line = new StepRecord
        {
            Step = 3, Loss = 2.5, ValLoss = double.NaN, Lr = 1e-3, GradNorm = 0.7, TokensPerSecond = 1200, ElapsedSeconds = 1.5,
            LayerGradNorms = new() { ["blocks.0.attn.wq.weight"] = 0.1 }, Sample = "the fox",
        }.ToJson();
        yield return (new MutationTarget("log line", Encoding.UTF8.GetBytes(line + "\n"),
            bytes => StepRecord.ReadLog(Encoding.UTF8.GetString(bytes).Split('\n'), "log.jsonl"), typeof(InvalidDataException), json), 1000);
    }

    [Test]
    public void NoMutationEscapesAsAnythingButTheOneExpectedError()
    {
        var failures = new List<string>();
        var checkpointMessages = new List<string>();
        foreach (var (target, iterations) in Targets())
        {
            target.Load(target.Valid);
            var rng = new Random(20251130);
            Func<byte[], Random, byte[]>[] mutators = [.. Bytes.All, .. target.Mutators, .. target.Mutators];
            int accepted = 0, refused = 0;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var cpu = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime;
            for (var i = 0; i < iterations && failures.Count < 20; i++)
            {
                var pick = rng.Next(mutators.Length);
                var mutated = mutators[pick](target.Valid, rng);
                try
                {
                    target.Load(mutated);
                    accepted++;
                }
                catch (Exception e) when (e.GetType() == target.Expected && e.Message.Length > 0 && !e.Message.Contains('\n') && !e.Message.Contains('\r'))
                {
                    refused++;
                    if (target.Name == "checkpoint")
                        checkpointMessages.Add(e.Message);
                }
                catch (Exception e)
                {
                    failures.Add($"{target.Name} #{i} (mutator {mutators[pick].Method.Name}): {e.GetType().Name}: {e.Message}");
                }
            }
            TestContext.Out.WriteLine($"{target.Name}: {iterations} mutations, {accepted} accepted, {refused} refused with {target.Expected.Name} ({clock.Elapsed.TotalSeconds:F1} s, {(System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds:F1} s CPU)");
            Assert.That(refused, Is.GreaterThan(iterations / 2), $"{target.Name}: most mutations must be refused");
        }
        Assert.That(failures, Is.Empty, "inputs that escaped as another exception or a multi-line message");
        foreach (var reached in new[]
        {
            "not valid UTF-8", "not valid JSON", "dtype", "shape[", "data_offsets", "trailing", "truncated", "is corrupt",
            "metadata field 'model_config' is invalid", "metadata field 'train_config' is invalid", "metadata field 'tokenizer' is invalid",
            "metadata field 'step'", "header length",
        })
            Assert.That(checkpointMessages.Any(m => m.Contains(reached, StringComparison.Ordinal)), $"no checkpoint mutation reached '{reached}'");
    }

    static Func<byte[], Random, byte[]> Metadata(bool resign) => (file, rng) => CheckpointMutator.WithMetadata(file, meta =>
    {
        var keys = meta.Keys.Where(k => k != "sha256").Order(StringComparer.Ordinal).ToArray();
        var key = keys[rng.Next(keys.Length)];
        var value = meta[key];
        if (rng.Next(10) == 0)
            meta.Remove(key);
        else if (value.StartsWith('{'))
            meta[key] = Encoding.UTF8.GetString(rng.Next(3) switch
            {
                0 => Json.DeleteProperty(Encoding.UTF8.GetBytes(value), rng),
                1 => Json.Truncate(Encoding.UTF8.GetBytes(value), rng),
                _ => Json.ReplaceValue(Encoding.UTF8.GetBytes(value), rng),
            });
        else
            meta[key] = Json.HostileText[rng.Next(Json.HostileText.Length)];
    }, resign);

    /// <summary>The 8-byte header length set to a value near the true one, zero, the file size, or huge.</summary>
    static byte[] HeaderLength(byte[] file, Random rng)
    {
        var bytes = file.ToArray();
        var n = BitConverter.ToUInt64(bytes, 0);
        ulong[] choices = [n - 1, n + 1, n + 8, 0, (ulong)bytes.Length, (ulong)bytes.Length - 8, ulong.MaxValue, 1UL << 31, (ulong)rng.NextInt64()];
        BitConverter.TryWriteBytes(bytes.AsSpan(0, 8), choices[rng.Next(choices.Length)]);
        return bytes;
    }

    /// <summary>One byte of the JSON header set to a random value.</summary>
    static byte[] HeaderByte(byte[] file, Random rng)
    {
        var bytes = file.ToArray();
        var n = (int)BitConverter.ToUInt64(bytes, 0);
        bytes[8 + rng.Next(n)] = (byte)rng.Next(256);
        return bytes;
    }
}

/// <summary>Byte-level mutators: a flipped bit, a random byte, an inserted or deleted byte, a truncation, appended bytes.</summary>
static class Bytes
{
    public static readonly Func<byte[], Random, byte[]>[] All = [FlipBit, SetByte, Insert, Delete, Truncate, Append];

    static byte[] FlipBit(byte[] b, Random rng)
    {
        var c = b.ToArray();
        c[rng.Next(c.Length)] ^= (byte)(1 << rng.Next(8));
        return c;
    }

    static byte[] SetByte(byte[] b, Random rng)
    {
        var c = b.ToArray();
        c[rng.Next(c.Length)] = (byte)rng.Next(256);
        return c;
    }

    static byte[] Insert(byte[] b, Random rng)
    {
        var at = rng.Next(b.Length + 1);
        return [.. b.AsSpan(0, at), (byte)rng.Next(256), .. b.AsSpan(at)];
    }

    static byte[] Delete(byte[] b, Random rng)
    {
        var at = rng.Next(b.Length);
        return [.. b.AsSpan(0, at), .. b.AsSpan(at + 1)];
    }

    static byte[] Truncate(byte[] b, Random rng) => b[..rng.Next(b.Length)];

    static byte[] Append(byte[] b, Random rng)
    {
        var extra = new byte[1 + rng.Next(16)];
        rng.NextBytes(extra);
        return [.. b, .. extra];
    }
}

/// <summary>JSON-aware mutators: they find value and property spans with Utf8JsonReader and edit them.</summary>
static class Json
{
    /// <summary>Wrong types, nulls, huge, tiny, negative and fractional numbers, numbers as strings, odd arrays and objects.</summary>
    public static readonly string[] Hostile =
    [
        "\"x\"", "null", "1e400", "1e-400", "-5", "\"-5\"", "1.5", "[]", "{}", "18446744073709551616", "9223372036854775807",
        "-9223372036854775809", "2147483648", "true", "\"86\"", "0", "-0", "[null,null]", "[1.5,2]", "[\"86\",\"64\"]", "\"\"",
        "[0,0]", "[0]", "[-1]", "\"F16\"", "\"\\ud800\"", "{\"a\":1}", "[[[[[[[[[[]]]]]]]]]]", "\"post\"", "\"sdd-paper\"", "7",
    ];

    /// <summary>Metadata strings that are not what a field holds: signs, blanks, fractions, overflow, words, NUL.</summary>
    public static readonly string[] HostileText =
        ["-5", "x", "", "1.5", "99999999999999999999", " 5", "+5", "2147483648", "NaN", "0x10", "1e3", "null", "{", "\0", "\uff19", "-0", "0"];

    /// <summary>Applies a JSON mutator to a safetensors file's header (the length prefix follows; data untouched).</summary>
    public static Func<byte[], Random, byte[]> InHeader(Func<byte[], Random, byte[]> mutate) => (file, rng) =>
    {
        var n = (int)BitConverter.ToUInt64(file, 0);
        return CheckpointMutator.WithHeader(file, mutate(file[8..(8 + n)], rng));
    };

    public static byte[] ReplaceValue(byte[] json, Random rng)
    {
        var (values, _) = Spans(json);
        if (values.Count == 0)
            return json;
        var (start, end) = values[rng.Next(values.Count)];
        return [.. json.AsSpan(0, start), .. Encoding.UTF8.GetBytes(Hostile[rng.Next(Hostile.Length)]), .. json.AsSpan(end)];
    }

    /// <summary>Removes one "key": value pair and its comma (a missing field).</summary>
    public static byte[] DeleteProperty(byte[] json, Random rng)
    {
        var (_, properties) = Spans(json);
        if (properties.Count == 0)
            return json;
        var (start, end) = properties[rng.Next(properties.Count)];
        var after = end;
        while (after < json.Length && json[after] is (byte)' ' or (byte)'\n')
            after++;
        if (after < json.Length && json[after] == ',')
            end = after + 1;
        else
        {
            var before = start - 1;
            while (before >= 0 && json[before] is (byte)' ' or (byte)'\n')
                before--;
            if (before >= 0 && json[before] == ',')
                start = before;
        }
        return [.. json.AsSpan(0, start), .. json.AsSpan(end)];
    }

    /// <summary>Writes one "key": value pair twice (a repeated key).</summary>
    public static byte[] RepeatProperty(byte[] json, Random rng)
    {
        var (_, properties) = Spans(json);
        if (properties.Count == 0)
            return json;
        var (start, end) = properties[rng.Next(properties.Count)];
        return [.. json.AsSpan(0, end), (byte)',', .. json.AsSpan(start, end - start), .. json.AsSpan(end)];
    }

    public static byte[] Truncate(byte[] json, Random rng) => json[..rng.Next(json.Length)];

    /// <summary>Byte spans of every value (scalars, arrays, objects) and of every "key": value pair.</summary>
    static (List<(int Start, int End)> Values, List<(int Start, int End)> Properties) Spans(byte[] json)
    {
        var values = new List<(int, int)>();
        var properties = new List<(int, int)>();
        var open = new Stack<(int Start, int Property)>();
        var property = -1;
        var reader = new Utf8JsonReader(json);
        try
        {
            while (reader.Read())
            {
                var start = (int)reader.TokenStartIndex;
                switch (reader.TokenType)
                {
                    case JsonTokenType.PropertyName:
                        property = start;
                        break;
                    case JsonTokenType.StartObject or JsonTokenType.StartArray:
                        open.Push((start, property));
                        property = -1;
                        break;
                    case JsonTokenType.EndObject or JsonTokenType.EndArray:
                        var (s, p) = open.Pop();
                        values.Add((s, (int)reader.BytesConsumed));
                        if (p >= 0)
                            properties.Add((p, (int)reader.BytesConsumed));
                        break;
                    default:
                        values.Add((start, (int)reader.BytesConsumed));
                        if (property >= 0)
                            properties.Add((property, (int)reader.BytesConsumed));
                        property = -1;
                        break;
                }
            }
        }
        catch (JsonException)
        {
        }
        return (values, properties);
    }
}
