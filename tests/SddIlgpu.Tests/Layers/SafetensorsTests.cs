// Safetensors reading and writing: round trip of tensors, metadata and model weights, and the errors for
// missing, extra and mis-shaped tensors, truncated files, corrupt headers and non-F32 dtypes.
using System.Text;
using NUnit.Framework;
using SddIlgpu.Layers;
using SddIlgpu.Tensors;
using SddIlgpu.Tests.Support;

namespace SddIlgpu.Tests.Layers;

public sealed class SafetensorsTests
{
    string dir = null!;

    [SetUp]
    public void MakeDir() => Directory.CreateDirectory(dir = Path.Combine(Path.GetTempPath(), "sdd-st-" + Guid.NewGuid().ToString("N")));

    [TearDown]
    public void RemoveDir() => Directory.Delete(dir, recursive: true);

    static readonly ModelConfig Config = new(11, 8, 1, 2, 1, 16, 4, Residual.Post, LinearKind.SddPaper);

    [Test]
    public void TensorsAndMetadataRoundTrip()
    {
        var path = Path.Combine(dir, "a.safetensors");
        var a = Check.Random(24, 1);
        var b = Check.Random(5, 2);
        Safetensors.Write(path, [("a", new Shape(2, 3, 4), a), ("b.c", new Shape(5), b)], new Dictionary<string, string> { ["k"] = "{\"x\": 1}" });
        var f = Safetensors.Read(path);
        Assert.That(f.Tensors["a"].Shape, Is.EqualTo(new Shape(2, 3, 4)));
        Check.BitIdentical(f.Tensors["a"].Data, a, "a");
        Check.BitIdentical(f.Tensors["b.c"].Data, b, "b.c");
        Assert.That(f.Metadata["k"], Is.EqualTo("{\"x\": 1}"));
        Assert.That(File.Exists(path + ".tmp"), Is.False, "the temporary file is renamed");
        var headerLength = BitConverter.ToUInt64(File.ReadAllBytes(path), 0);
        Assert.That(headerLength % 8, Is.Zero, "header padded to 8 bytes");
    }

    [Test]
    public void WeightsRoundTripBitForBit()
    {
        var device = TestDevices.Get("ilgpu-cpu");
        var path = Path.Combine(dir, "w.safetensors");
        using var w = new ModelWeights(device, Config);
        w.Initialize(7);
        Safetensors.Save(path, w, new Dictionary<string, string> { ["step"] = "3" });
        using var w2 = new ModelWeights(device, Config);
        var f = Safetensors.Read(path);
        Assert.That(ModelConfig.FromJson(f.Metadata["config"]), Is.EqualTo(Config));
        Assert.That(f.Metadata["step"], Is.EqualTo("3"));
        Safetensors.Load(w2, f);
        Check.BitIdentical(w2.Values.ToArray(), w.Values.ToArray(), "weights");
    }

    [Test]
    public void LoadSaysWhichTensorIsMissingExtraOrMisShaped()
    {
        var device = TestDevices.Get("ilgpu-cpu");
        using var w = new ModelWeights(device, Config);
        var tensors = w.Parameters.ToDictionary(p => p.Name, p => new SafetensorsTensor(p.Name, p.Shape, new float[p.Shape.Length]));
        tensors.Remove("blocks.0.attn.wk.alpha");
        tensors["blocks.0.attn.q_norm.weight"] = new SafetensorsTensor("blocks.0.attn.q_norm.weight", new Shape(4), new float[4]);
        tensors["final_norm.weight"] = new SafetensorsTensor("final_norm.weight", new Shape(9), new float[9]);
        var e = Assert.Throws<InvalidDataException>(() => Safetensors.Load(w, new SafetensorsFile(tensors.AsReadOnly(), new Dictionary<string, string>())))!;
        Assert.That(e.Message, Does.Contain("missing 'blocks.0.attn.wk.alpha' (4)")
            .And.Contain("extra 'blocks.0.attn.q_norm.weight'")
            .And.Contain("'final_norm.weight' is (9), expected (8)"));
    }

    [Test]
    public void TruncatedCorruptAndNonF32FilesAreRejectedClearly()
    {
        var path = Path.Combine(dir, "t.safetensors");
        Safetensors.Write(path, [("a", new Shape(4, 4), Check.Random(16, 3))]);
        var bytes = File.ReadAllBytes(path);

        File.WriteAllBytes(path, bytes[..^8]);
        Assert.That(Assert.Throws<InvalidDataException>(() => Safetensors.Read(path))!.Message, Does.Contain("truncated"));
        File.WriteAllBytes(path, bytes[..20]);
        Assert.That(Assert.Throws<InvalidDataException>(() => Safetensors.Read(path))!.Message, Does.Contain("truncated"));
        File.WriteAllBytes(path, bytes[..5]);
        Assert.That(Assert.Throws<InvalidDataException>(() => Safetensors.Read(path))!.Message, Does.Contain("too short"));

        var corrupt = (byte[])bytes.Clone();
        corrupt[8] = (byte)'#';
        File.WriteAllBytes(path, corrupt);
        Assert.That(Assert.Throws<InvalidDataException>(() => Safetensors.Read(path))!.Message, Does.Contain("does not start with '{'"));
        corrupt = (byte[])bytes.Clone();
        corrupt[9] = (byte)'#';
        File.WriteAllBytes(path, corrupt);
        Assert.That(Assert.Throws<InvalidDataException>(() => Safetensors.Read(path))!.Message, Does.Contain("not valid JSON"));

        var header = Encoding.UTF8.GetString(bytes, 8, (int)BitConverter.ToUInt64(bytes, 0)).Replace("F32", "F16");
        var f16 = bytes.ToArray();
        Encoding.UTF8.GetBytes(header).CopyTo(f16, 8);
        File.WriteAllBytes(path, f16);
        Assert.That(Assert.Throws<InvalidDataException>(() => Safetensors.Read(path))!.Message, Does.Contain("is F16; only F32"));
    }
}
