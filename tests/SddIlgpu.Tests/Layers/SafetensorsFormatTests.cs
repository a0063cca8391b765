// The safetensors reader enforces the format exactly (issue 10 §3): each case of a hand-built header is either
// accepted with the right content or refused with one InvalidDataException whose single-line message names the
// file and the field. The cases are those observed on the issue plus the rest of the format's rules.
using System.Text;
using NUnit.Framework;
using SddIlgpu.Layers;
using SddIlgpu.Tensors;

namespace SddIlgpu.Tests.Layers;

public sealed class SafetensorsFormatTests
{
    const string Source = "case.safetensors";

    /// <summary>An 8-byte length, the header text as given (UTF-8), then <paramref name="dataBytes"/> bytes 0, 1, 2, ...</summary>
    static byte[] Build(string header, int dataBytes) => Build(Encoding.UTF8.GetBytes(header), dataBytes);

    static byte[] Build(byte[] header, int dataBytes)
    {
        var bytes = new byte[8 + header.Length + dataBytes];
        BitConverter.TryWriteBytes(bytes.AsSpan(0, 8), (ulong)header.Length);
        header.CopyTo(bytes, 8);
        for (var i = 0; i < dataBytes; i++)
            bytes[8 + header.Length + i] = (byte)i;
        return bytes;
    }

    static string Refused(byte[] bytes)
    {
        var e = Assert.Throws<InvalidDataException>(() => Safetensors.Parse(bytes, Source))!;
        Assert.That(e.Message, Does.StartWith(Source + ": "), "the message names the file");
        Assert.That(e.Message, Does.Not.Contain('\n').And.Not.Contain('\r'), "one line");
        return e.Message;
    }

    const string A = """ "a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]} """;

    [Test]
    public void AZeroSizeTensorIsAccepted()
    {
        var f = Safetensors.Parse(Build("{" + A + """,  "e":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}""", 16), Source);
        Assert.That(f.Tensors["e"].Dims, Is.EqualTo(new long[] { 0 }));
        Assert.That(f.Tensors["e"].Data, Is.Empty);
        Assert.That(f.Tensors["a"].Shape, Is.EqualTo(new Shape(2, 2)));
        Assert.That(f.Tensors["a"].Data[1], Is.EqualTo(BitConverter.ToSingle([4, 5, 6, 7])));

        var zeroInside = Safetensors.Parse(Build("""{"z":{"dtype":"F32","shape":[3,0,5],"data_offsets":[0,0]}}""", 0), Source);
        Assert.That(zeroInside.Tensors["z"].DimsText, Is.EqualTo("(3, 0, 5)"));
        Assert.That(() => zeroInside.Tensors["z"].Shape, Throws.TypeOf<InvalidDataException>().With.Message.Contains("'z' has shape (3, 0, 5)"));
    }

    [Test]
    public void AScalarAnEmptyHeaderAndNullMetadataAreAccepted()
    {
        var scalar = Safetensors.Parse(Build("""{"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}""", 4), Source);
        Assert.That(scalar.Tensors["s"].Shape, Is.EqualTo(new Shape(1)));
        Assert.That(Safetensors.Parse(Build("{}", 0), Source).Tensors, Is.Empty);
        Assert.That(Safetensors.Parse(Build("""{"__metadata__":null}""", 0), Source).Metadata, Is.Empty);
        Assert.That(Safetensors.Parse(Build("{" + A + "}      ", 16), Source).Tensors, Has.Count.EqualTo(1), "space padding after the object");
    }

    [Test]
    public void TensorsMayBeListedInAnyOrderButMustTileTheData()
    {
        var f = Safetensors.Parse(Build("""{"b":{"dtype":"F32","shape":[1],"data_offsets":[16,20]},""" + A + "}", 20), Source);
        Assert.That(f.Tensors["b"].Data[0], Is.EqualTo(BitConverter.ToSingle([16, 17, 18, 19])));
    }

    [Test]
    public void TrailingBytesAreRefused() =>
        Assert.That(Refused(Build("{" + A + "}", 17)), Does.Contain("1 bytes follow the last tensor").And.Contain("trailing"));

    [Test]
    public void OverlappingOffsetsAreRefused() =>
        Assert.That(Refused(Build("{" + A + """,  "b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}""", 24)),
            Does.Contain("tensor 'b' data_offsets [8, 24] overlap tensor 'a'"));

    [Test]
    public void AGapBetweenTensorsIsRefused()
    {
        Assert.That(Refused(Build("{" + A + """,  "b":{"dtype":"F32","shape":[4],"data_offsets":[20,36]}}""", 36)),
            Does.Contain("tensor 'b'").And.Contain("gap of 4 bytes"));
        Assert.That(Refused(Build("""{"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8)), Does.Contain("gap of 4 bytes after byte 0"));
    }

    [Test]
    public void DataPastTheEndIsRefusedAsTruncated() =>
        Assert.That(Refused(Build("{" + A + "}", 12)), Does.Contain("tensor 'a' data_offsets [0, 16] run past the 12 data bytes").And.Contain("truncated"));

    [Test]
    public void InvalidUtf8InTheHeaderIsRefused()
    {
        var header = Encoding.UTF8.GetBytes("{" + A.Replace("\"a\"", "\"a\u00e9\"") + "}");
        var at = Array.IndexOf(header, (byte)0xC3);
        header[at] = 0xFF;
        Assert.That(Refused(Build(header, 16)), Does.Contain($"not valid UTF-8 (byte {8 + at} of the file)"));
    }

    [TestCase("5", "tensor 'a' dtype must be a string", TestName = "dtype 5")]
    [TestCase("null", "tensor 'a' dtype must be a string", TestName = "dtype null")]
    [TestCase("\"F33\"", "unknown dtype 'F33'", TestName = "dtype unknown")]
    [TestCase("\"F16\"", "tensor 'a' is F16; only F32 is supported", TestName = "dtype F16")]
    public void ABadDtypeIsRefused(string dtype, string expected) =>
        Assert.That(Refused(Build("{" + A.Replace("\"F32\"", dtype) + "}", 16)), Does.Contain(expected));

    [TestCase("[1.5,2]", "shape[0] must be a non-negative integer below 2^63; got 1.5", TestName = "shape 1.5")]
    [TestCase("[\"86\",\"64\"]", "shape[0] must be a non-negative integer below 2^63; got \"86\"", TestName = "shape strings")]
    [TestCase("[2,-2]", "shape[1] must be a non-negative integer below 2^63; got -2", TestName = "shape negative")]
    [TestCase("[2,1e1]", "shape[1] must be a non-negative integer below 2^63; got 1e1", TestName = "shape exponent")]
    [TestCase("[18446744073709551616]", "shape[0] must be a non-negative integer below 2^63", TestName = "shape beyond u64")]
    [TestCase("[4294967296,4294967296,4294967296]", "has more elements than 2^64", TestName = "shape numel overflow")]
    [TestCase("[null]", "shape[0] must be a non-negative integer", TestName = "shape null element")]
    [TestCase("\"2,2\"", "shape must be an array of non-negative integers; got \"2,2\"", TestName = "shape string")]
    [TestCase("[2,3]", "tensor 'a' of shape (2, 3) and dtype F32 needs 24 bytes but its data_offsets [0, 16] span 16", TestName = "shape mismatches offsets")]
    public void ABadShapeIsRefused(string shape, string expected) =>
        Assert.That(Refused(Build("{" + A.Replace("[2,2]", shape) + "}", 16)), Does.Contain(expected));

    [TestCase("[null,null]", "data_offsets[0] must be a non-negative integer below 2^63; got null", TestName = "offsets null")]
    [TestCase("[0]", "data_offsets must be two integers [begin, end]; got [0]", TestName = "offsets one")]
    [TestCase("[0,16,16]", "data_offsets must be two integers", TestName = "offsets three")]
    [TestCase("[0,\"16\"]", "data_offsets[1] must be a non-negative integer", TestName = "offsets string")]
    [TestCase("[-16,0]", "data_offsets[0] must be a non-negative integer", TestName = "offsets negative")]
    [TestCase("[16,0]", "data_offsets [16, 0] end before they begin", TestName = "offsets reversed")]
    [TestCase("[0,16.0]", "data_offsets[1] must be a non-negative integer", TestName = "offsets float")]
    [TestCase("{\"0\":16}", "data_offsets must be two integers", TestName = "offsets object")]
    public void BadDataOffsetsAreRefused(string offsets, string expected) =>
        Assert.That(Refused(Build("{" + A.Replace("[0,16]", offsets) + "}", 16)), Does.Contain(expected));

    [TestCase("""{"a":5}""", "tensor 'a' must be an object with dtype, shape and data_offsets; got 5", TestName = "entry not object")]
    [TestCase("""{"a":{"dtype":"F32","shape":[4]}}""", "tensor 'a' lacks data_offsets", TestName = "entry lacks offsets")]
    [TestCase("""{"a":{"shape":[4],"data_offsets":[0,16]}}""", "tensor 'a' lacks dtype", TestName = "entry lacks dtype")]
    [TestCase("""{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16],"x":1}}""", "tensor 'a' has an unknown field 'x'", TestName = "entry unknown field")]
    [TestCase("""{"a":{"dtype":"F32","dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", "tensor 'a' gives 'dtype' twice", TestName = "entry field twice")]
    [TestCase("""{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"a":{"dtype":"F32","shape":[0],"data_offsets":[16,16]}}""", "the header names 'a' twice", TestName = "tensor twice")]
    [TestCase("""{"__metadata__":{"k":5}}""", "'__metadata__'.'k' must be a string; got 5", TestName = "metadata number")]
    [TestCase("""{"__metadata__":{"k":"a","k":"b"}}""", "'__metadata__' names 'k' twice", TestName = "metadata key twice")]
    [TestCase("""{"__metadata__":[]}""", "'__metadata__' must be an object of strings", TestName = "metadata array")]
    [TestCase("""{"\ud800":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", "a string that is not valid Unicode", TestName = "name lone surrogate")]
    [TestCase("""{"a":{"dtype":"F3\ud800","shape":[4],"data_offsets":[0,16]}}""", "a string that is not valid Unicode", TestName = "dtype lone surrogate")]
    [TestCase("""{"__metadata__":{"k":"\udc00"}}""", "a string that is not valid Unicode", TestName = "metadata lone surrogate")]
    [TestCase("""["a"]""", "does not start with '{'", TestName = "header array")]
    [TestCase("""{"a":""", "the header is not valid JSON", TestName = "header truncated")]
    [TestCase("", "does not start with '{'", TestName = "header empty")]
    public void ABadHeaderIsRefused(string header, string expected) =>
        Assert.That(Refused(Build(header, 16)), Does.Contain(expected));

    [Test]
    public void AHeaderLengthBeyondTheFileOrTheLimitIsRefused()
    {
        var bytes = Build("{" + A + "}", 16);
        BitConverter.TryWriteBytes(bytes.AsSpan(0, 8), (ulong)bytes.Length);
        Assert.That(Refused(bytes), Does.Contain($"the header claims {bytes.Length} bytes but only {bytes.Length - 8} follow"));
        BitConverter.TryWriteBytes(bytes.AsSpan(0, 8), ulong.MaxValue);
        Assert.That(Refused(bytes), Does.Contain("above the 100000000-byte limit"));
        Assert.That(Refused(bytes[..7]), Does.Contain("7 bytes is too short"));
    }

    [Test]
    public void WriteThenReadKeepsZeroSizeAndScalarTensors()
    {
        var path = Path.Combine(Path.GetTempPath(), $"sdd-st-{Guid.NewGuid():N}.safetensors");
        try
        {
            Safetensors.Write(path, [new SafetensorsTensor("e", [0, 3], []), new SafetensorsTensor("s", [], [2.5f]), new SafetensorsTensor("v", new Shape(2), [1f, 2f])]);
            var f = Safetensors.Read(path);
            Assert.That(f.Tensors["e"].DimsText, Is.EqualTo("(0, 3)"));
            Assert.That(f.Tensors["s"].Data, Is.EqualTo(new[] { 2.5f }));
            Assert.That(f.Tensors["v"].Data, Is.EqualTo(new[] { 1f, 2f }));
            Assert.Throws<ArgumentException>(() => Safetensors.Write(path, [new SafetensorsTensor("__metadata__", new Shape(1), [0f])]));
            Assert.Throws<ArgumentException>(() => Safetensors.Write(path, [new SafetensorsTensor("x", new Shape(2), [0f])]));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
