using NUnit.Framework;
using SddIlgpu.Training;
using SddIlgpu.Layers;

namespace SddIlgpu.Tests.Cli;

/// <summary>Every bad input of issue 4 item 6: a clear message, a non-zero exit, nothing half-written.</summary>
public sealed class BadInputTests
{
    string dir = null!;

    [SetUp]
    public void MakeDir() => dir = Directory.CreateTempSubdirectory("sdd-bad-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(dir, recursive: true);

    static readonly string[] Small = ["--device", "cpu", "--d-model", "16", "--n-layer", "1", "--n-head", "2", "--seq-len", "8", "--batch", "2", "--quiet"];

    (int Code, string Out, string Err) Train(params string[] extra) =>
        CliRunner.Run(["train", .. Small, "--out", Path.Combine(dir, "run"), .. extra]);

    [Test]
    public void MissingDataFile()
    {
        var r = Train("--data", Path.Combine(dir, "missing.txt"), "--steps", "1");
        Assert.That(r.Code, Is.EqualTo(1));
        Assert.That(r.Err, Does.Contain("does not exist").And.Contain("--data"));
    }

    [Test]
    public void EmptyDataFile()
    {
        var path = Path.Combine(dir, "empty.txt");
        File.WriteAllText(path, "");
        var r = Train("--data", path, "--steps", "1");
        Assert.That(r.Code, Is.EqualTo(1));
        Assert.That(r.Err, Does.Contain("is empty"));
    }

    [Test]
    public void CorpusShorterThanSeqLenPlusOne()
    {
        var path = Path.Combine(dir, "short.txt");
        File.WriteAllText(path, "abcdefghijklmnopqrstuvwxyz");
        var r = Train("--data", path, "--steps", "1");
        Assert.That(r.Code, Is.EqualTo(1));
        Assert.That(r.Err, Does.Contain("seq_len + 1"));
    }

    [Test]
    public void UnknownPresetFlagAndDevice()
    {
        var preset = CliRunner.Run("train", "--preset", "huge", "--device", "cpu", "--steps", "1");
        Assert.That(preset.Code, Is.Not.Zero);
        Assert.That(preset.Err, Does.Contain("huge").And.Contain("tiny"));

        var flag = CliRunner.Run("train", "--stepz", "3");
        Assert.That(flag.Code, Is.EqualTo(2));
        Assert.That(flag.Err, Does.Contain("Unknown flag '--stepz'").And.Contain("usage: sdd train"));

        var device = CliRunner.Run("train", "--device", "tpu", "--steps", "1");
        Assert.That(device.Code, Is.EqualTo(1));
        Assert.That(device.Err, Does.Contain("Unknown device 'tpu'"));

        Assert.That(CliRunner.Run("frobnicate").Code, Is.EqualTo(2));
    }

    [Test]
    public void InvalidConfiguration()
    {
        var r = Train("--n-kv-head", "3", "--steps", "1");
        Assert.That(r.Code, Is.EqualTo(1));
        Assert.That(r.Err, Does.Contain("must be divisible by n_kv_head (3)"));
        var odd = CliRunner.Run("train", "--device", "cpu", "--d-model", "18", "--n-head", "2", "--steps", "1", "--out", Path.Combine(dir, "odd"));
        Assert.That(odd.Code, Is.EqualTo(1));
        Assert.That(odd.Err, Does.Contain("must be even"));
        var lr = Train("--lr", "-1", "--steps", "1");
        Assert.That(lr.Code, Is.EqualTo(2), "a value out of its option's range is a usage mistake");
        Assert.That(lr.Err, Does.Contain("--lr"));
    }

    [Test]
    public void UnwritableOutputFolder()
    {
        var file = Path.Combine(dir, "a-file");
        File.WriteAllText(file, "x");
        var r = CliRunner.Run(["train", .. Small, "--steps", "1", "--out", Path.Combine(file, "run")]);
        Assert.That(r.Code, Is.EqualTo(1));
        Assert.That(r.Err, Does.Contain("not writable").And.Contain("--out"));
    }

    string TrainedCheckpoint()
    {
        var r = Train("--steps", "2");
        Assert.That(r.Code, Is.Zero, r.Err);
        return Path.Combine(dir, "run", Trainer.CheckpointFile);
    }

    [Test]
    public void TruncatedCheckpoint()
    {
        var ckpt = TrainedCheckpoint();
        var bytes = File.ReadAllBytes(ckpt);
        File.WriteAllBytes(ckpt, bytes[..(bytes.Length / 2)]);
        var r = CliRunner.Run("sample", ckpt, "--device", "cpu", "--tokens", "3");
        Assert.That(r.Code, Is.EqualTo(1));
        Assert.That(r.Err, Does.Contain("truncated or corrupt"));
    }

    [Test]
    public void CorruptCheckpoint()
    {
        var ckpt = TrainedCheckpoint();
        var bytes = File.ReadAllBytes(ckpt);
        bytes[^5] ^= 0x40;
        File.WriteAllBytes(ckpt, bytes);
        var r = CliRunner.Run(["train", "--resume", ckpt, "--device", "cpu", "--steps", "3", "--quiet"]);
        Assert.That(r.Code, Is.EqualTo(1));
        Assert.That(r.Err, Does.Contain("corrupt"));
    }

    [Test]
    public void CheckpointFromAnotherFormatVersion()
    {
        var ckpt = TrainedCheckpoint();
        var text = File.ReadAllBytes(ckpt);
        var s = System.Text.Encoding.Latin1.GetString(text);
        var patched = s.Replace("\"format_version\":\"1\"", "\"format_version\":\"9\"", StringComparison.Ordinal);
        Assert.That(patched, Is.Not.EqualTo(s), "the header carries the format version");
        File.WriteAllBytes(ckpt, System.Text.Encoding.Latin1.GetBytes(patched));
        var r = CliRunner.Run("sample", ckpt, "--device", "cpu", "--tokens", "3");
        Assert.That(r.Code, Is.EqualTo(1));
        Assert.That(r.Err, Does.Contain("format version 9"));
    }

    [Test]
    public void CheckpointForAnotherModelShape()
    {
        var ckpt = TrainedCheckpoint();
        var state = SddIlgpu.Training.Checkpoints.Checkpoint.ReadState(ckpt);
        using var device = SddIlgpu.Tensors.Device.Open("cpu");
        using var other = new SddIlgpu.Layers.ModelWeights(device, state.Model with { DModel = 32, FfnHidden = 88 });
        var e = Assert.Throws<SddIlgpu.Training.Checkpoints.CheckpointException>(
            () => SddIlgpu.Training.Checkpoints.Checkpoint.Load(ckpt, other, null))!;
        Assert.That(e.Message, Does.Contain("different model").And.Contain("d_model 16"));
    }

    [Test]
    public void ResumeRejectsModelFlags()
    {
        var ckpt = TrainedCheckpoint();
        var r = CliRunner.Run("train", "--resume", ckpt, "--d-model", "32", "--device", "cpu");
        Assert.That(r.Code, Is.EqualTo(2));
        Assert.That(r.Err, Does.Contain("--d-model cannot change a resumed run"));
    }

    [Test]
    public void AFailedWriteLeavesTheOldFileAndNoTemporary()
    {
        var path = Path.Combine(dir, "out.bin");
        File.WriteAllText(path, "old");
        Assert.Throws<IOException>(() => AtomicFile.Write(path, s =>
        {
            s.Write(new byte[100]);
            throw new IOException("No space left on device");
        }));
        Assert.That(File.ReadAllText(path), Is.EqualTo("old"));
        Assert.That(Directory.GetFiles(dir), Has.Length.EqualTo(1));
    }
}
