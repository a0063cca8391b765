// `sdd prepare` then `sdd train --data DIR`, resume and eval on the shards, and prepare's bad input.
using NUnit.Framework;
using SddIlgpu.Training.Data;

namespace SddIlgpu.Tests.Cli;

public sealed class PrepareCommandTests
{
    string dir = null!;

    [SetUp]
    public void MakeDir() => dir = Directory.CreateTempSubdirectory("sdd-prep-cli-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(dir, recursive: true);

    static readonly string[] Small = ["--device", "cpu", "--d-model", "16", "--n-layer", "1", "--n-head", "2", "--seq-len", "8", "--batch", "2", "--quiet"];

    string Docs()
    {
        var path = Path.Combine(dir, "docs.jsonl");
        File.WriteAllLines(path, Enumerable.Range(0, 30).Select(i => $"{{\"text\": \"{GeneratedCorpus.Generate(400, (ulong)i).Replace("\n", "\\n").Replace("\"", "\\\"")}\"}}"));
        return path;
    }

    [Test]
    public void PreparedFolderTrainsResumesAndEvaluates()
    {
        var prepared = Path.Combine(dir, "prepared");
        var prep = CliRunner.Run("prepare", Docs(), "--tokenizer", "char", "--out", prepared, "--val-docs", "3", "--shard-tokens", "3000", "--quiet");
        Assert.That(prep.Code, Is.Zero, prep.Err);
        Assert.That(prep.Out, Does.Contain("30 documents").And.Contain("sdd train --data"));
        Assert.That(Directory.GetFiles(prepared, "sdd_train_*.bin"), Has.Length.GreaterThan(2));

        var run = Path.Combine(dir, "run");
        var first = CliRunner.Run(["train", .. Small, "--data", prepared, "--steps", "4", "--stop-at", "2", "--out", run]);
        Assert.That(first.Code, Is.Zero, first.Err);
        var resumed = CliRunner.Run("train", "--resume", run, "--quiet");
        Assert.That(resumed.Code, Is.Zero, resumed.Err);
        Assert.That(resumed.Out, Does.Contain("Done: 4 steps"));
        var eval = CliRunner.Run("eval", run, "--device", "cpu");
        Assert.That(eval.Code, Is.Zero, eval.Err);
        Assert.That(eval.Out, Does.Contain("validation loss").And.Contain(prepared));

        // A tokenizer that contradicts the prepared folder is refused.
        var wrong = CliRunner.Run(["train", .. Small, "--data", prepared, "--tokenizer", "byte", "--steps", "1", "--out", Path.Combine(dir, "w")]);
        Assert.That(wrong.Code, Is.EqualTo(1));
        Assert.That(wrong.Err, Does.Contain("prepared with"));
    }

    [Test]
    public void BadInputAndOptionsAreOneLineErrors()
    {
        var latin1 = Path.Combine(dir, "latin1.txt");
        File.WriteAllBytes(latin1, System.Text.Encoding.Latin1.GetBytes("le café naïve, "));
        var r = CliRunner.Run("prepare", latin1, "--tokenizer", "char", "--out", Path.Combine(dir, "o"));
        Assert.That(r.Code, Is.EqualTo(1));
        Assert.That(r.Err.Trim().Split('\n'), Has.Length.EqualTo(1));
        Assert.That(r.Err, Does.Contain("byte offset 6").And.Contain("iconv"));
        Assert.That(Directory.Exists(Path.Combine(dir, "o")), Is.False);

        var fraction = CliRunner.Run("prepare", latin1, "--tokenizer", "byte", "--out", Path.Combine(dir, "o"), "--val-fraction", "1.5");
        Assert.That(fraction.Code, Is.EqualTo(2));
        Assert.That(fraction.Err, Does.Contain("--val-fraction").And.Contain("must be in (0, 1)"));
        var zero = CliRunner.Run("prepare", latin1, "--tokenizer", "byte", "--out", Path.Combine(dir, "o"), "--val-fraction", "0");
        Assert.That(zero.Code, Is.EqualTo(2));
        Assert.That(zero.Err, Does.Contain("must be in (0, 1)"), "0 is refused, and the range printed says so");
        var noOut = CliRunner.Run("prepare", latin1);
        Assert.That(noOut.Code, Is.EqualTo(2));
        Assert.That(noOut.Err, Does.Contain("--out"));
        var missing = CliRunner.Run("train", "--data", Path.Combine(dir, "nothing_here"), "--device", "cpu", "--quiet");
        Assert.That(missing.Code, Is.EqualTo(1));
    }

    [Test]
    public void ATextFileIsPreparedOnceIntoTheCacheAndADamagedCacheIsPreparedAgain()
    {
        var cache = Path.Combine(dir, "cache");
        var text = Path.Combine(dir, "fables.txt");
        File.WriteAllText(text, GeneratedCorpus.Generate(20_000));
        string[] train = ["train", .. Small, "--data", text, "--cache-dir", cache, "--steps", "2"];
        var first = CliRunner.Run([.. train, "--out", Path.Combine(dir, "a")]);
        Assert.That(first.Code, Is.Zero, first.Err);
        var prepared = Directory.GetDirectories(cache).Single();
        Assert.That(Path.GetFileName(prepared), Does.StartWith("char-"));
        var shard = Directory.GetFiles(prepared, "sdd_train_*.bin").Single();
        var stamp = File.GetLastWriteTimeUtc(shard);

        var second = CliRunner.Run([.. train, "--out", Path.Combine(dir, "b")]);
        Assert.That(second.Code, Is.Zero, second.Err);
        Assert.That(second.Err, Does.Not.Contain("warning"));
        Assert.That(File.GetLastWriteTimeUtc(shard), Is.EqualTo(stamp), "the cache was reused, not rewritten");
        Assert.That(File.ReadAllBytes(Path.Combine(dir, "b", "checkpoint.safetensors")), Is.EqualTo(File.ReadAllBytes(Path.Combine(dir, "a", "checkpoint.safetensors"))));

        // Cut the shard to 400 bytes (a truncated cache): a warning, a fresh prepare, the same result.
        using (var f = new FileStream(shard, FileMode.Open))
            f.SetLength(400);
        var third = CliRunner.Run([.. train, "--out", Path.Combine(dir, "c")]);
        Assert.That(third.Code, Is.Zero, third.Err);
        Assert.That(third.Err, Does.Contain("warning: the cached tokens").And.Contain("encoding the file again"));
        Assert.That(File.ReadAllBytes(Path.Combine(dir, "c", "checkpoint.safetensors")), Is.EqualTo(File.ReadAllBytes(Path.Combine(dir, "a", "checkpoint.safetensors"))));
    }
}
