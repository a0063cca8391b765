// Issue 10 §1 through the sdd tool: bad text is one clear line and exit 1; a run on emoji-rich text works on a
// machine whose token cache is empty (eval, sample, resume); a bad cache is a warning, not a wrong corpus.
using System.Text;
using NUnit.Framework;
using SddIlgpu.Training;
using SddIlgpu.Training.Checkpoints;
using SddIlgpu.Training.Data;

namespace SddIlgpu.Tests.Cli;

public sealed class TextInputCliTests
{
    string dir = null!;

    [SetUp]
    public void MakeDir() => dir = Directory.CreateTempSubdirectory("sdd-textcli-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(dir, recursive: true);

    static readonly string[] Small = ["--device", "cpu", "--d-model", "16", "--n-layer", "1", "--n-head", "2", "--seq-len", "8", "--batch", "2", "--quiet"];

    (int Code, string Out, string Err) Train(string data, params string[] extra) =>
        CliRunner.Run(["train", .. Small, "--data", data, "--out", Path.Combine(dir, "run"), "--cache-dir", Path.Combine(dir, "cache"), .. extra]);

    string Write(string name, byte[] bytes)
    {
        var path = Path.Combine(dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Test]
    public void Latin1AndBinaryDataAreRefusedInOneLine()
    {
        var latin1 = Write("latin1.txt", Encoding.Latin1.GetBytes(string.Concat(Enumerable.Repeat("le café naïve à la crème brûlée. ", 60))));
        var r = Train(latin1, "--steps", "1");
        Assert.That(r.Code, Is.EqualTo(1));
        Assert.That(r.Err, Does.Contain("byte offset 6").And.Contain("iconv -f LATIN1 -t UTF-8"));
        Assert.That(r.Err.Trim().Split('\n'), Has.Length.EqualTo(1), "one line, no stack trace");

        var binary = File.Exists("/usr/bin/ls") ? "/usr/bin/ls" : Write("binary", [0x7F, (byte)'E', (byte)'L', (byte)'F', 0, .. new byte[4000]]);
        var nul = Train(binary, "--steps", "1");
        Assert.That(nul.Code, Is.EqualTo(1));
        Assert.That(nul.Err, Does.Contain("NUL byte").And.Contain("--tokenizer byte"));

        var bytes = Train(latin1, "--steps", "1", "--tokenizer", "byte");
        Assert.That(bytes.Code, Is.Zero, bytes.Err);
    }

    [Test]
    public void AnEmojiRunWorksAfterTheTokenCacheIsCleared()
    {
        var words = "the robot 🤖 smiles 😀 at the cat and the cat 😀 ignores the robot 🤖 while 🎉 happens.\n";
        var data = Write("emoji.txt", Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat(words, 30))));
        var trained = Train(data, "--steps", "2");
        Assert.That(trained.Code, Is.Zero, trained.Err);
        var run = Path.Combine(dir, "run");

        var old = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        Environment.SetEnvironmentVariable("XDG_CACHE_HOME", Directory.CreateDirectory(Path.Combine(dir, "empty-cache")).FullName);
        try
        {
            var eval = CliRunner.Run("eval", run, "--device", "cpu");
            Assert.That(eval.Code, Is.Zero, eval.Err);
            Assert.That(eval.Out, Does.Contain("validation loss"));

            var sample = CliRunner.Run("sample", run, "--device", "cpu", "--tokens", "200", "--prompt", "the 🤖");
            Assert.That(sample.Code, Is.Zero, sample.Err);
            Assert.That(sample.Out, Does.StartWith("the 🤖"));
            Assert.DoesNotThrow(() => Tokenizers.RequireWellFormed(sample.Out), "no lone surrogate in a sample");

            var unknown = CliRunner.Run("sample", run, "--device", "cpu", "--tokens", "2", "--prompt", "🦊");
            Assert.That(unknown.Code, Is.EqualTo(1));
            Assert.That(unknown.Err, Does.Contain("'🦊' (U+1F98A)").And.Not.Contain("U+D83E"));

            var resumed = CliRunner.Run("train", "--resume", Path.Combine(run, Trainer.CheckpointFile), "--device", "cpu", "--steps", "3", "--quiet");
            Assert.That(resumed.Code, Is.Zero, resumed.Err);
        }
        finally
        {
            Environment.SetEnvironmentVariable("XDG_CACHE_HOME", old);
        }
        var state = Checkpoint.ReadState(Path.Combine(run, Trainer.CheckpointFile));
        Assert.That(state.Step, Is.EqualTo(3));
        var tokenizer = (CharTokenizer)Tokenizers.FromJson(state.TokenizerJson);
        Assert.That(tokenizer.Vocabulary, Does.Contain(new Rune(0x1F600)).And.Contain(new Rune(0x1F916)).And.Contain(new Rune(0x1F389)));
    }

    [Test]
    public void ATruncatedCacheIsAWarningAndTheRightCorpus()
    {
        var data = Write("fables.txt", Encoding.UTF8.GetBytes(GeneratedCorpus.Generate(20_000)));
        Assert.That(Train(data, "--steps", "1").Code, Is.Zero);
        // The CLI keeps a text file prepared as token shards (the `sdd prepare` pipeline); cut its training shard.
        var prepared = Directory.GetDirectories(Path.Combine(dir, "cache")).Single();
        var shard = Directory.GetFiles(prepared, "*_train_*.bin").Single();
        var expected = TextCorpus.Load(data, "char").Tokens.Length;
        File.WriteAllBytes(shard, File.ReadAllBytes(shard)[..400]);

        var r = CliRunner.Run(["train", .. Small, "--data", data, "--out", Path.Combine(dir, "again"), "--cache-dir", Path.Combine(dir, "cache"), "--steps", "1"]);
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Err, Does.Contain($"sdd: warning: the cached tokens of '{data}' in '{prepared}' are unusable").And.Contain("encoding the file again"));
        var again = SddIlgpu.Training.Data.Prepare.PreparedData.Verify(prepared);
        Assert.That(again.Train.Tokens + again.Val.Tokens, Is.EqualTo(expected), "the whole corpus, not the 100 tokens a cut cache held");
    }
}
