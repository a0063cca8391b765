// Smoke tests of the paper-reproduction experiments at tiny sizes (seconds each): every experiment writes its
// markdown table, JSON and PNG plots, and one qualitative property holds (issue 7's bar).
using System.Text.Json.Nodes;
using NUnit.Framework;
using SddIlgpu.Tests.Cli;
using SddIlgpu.Tests.Support;
using SddIlgpu.Training.Data;
using SddIlgpu.Training.Experiments;

namespace SddIlgpu.Tests.Training;

public sealed class ExperimentTests
{
    string dir = null!;

    [SetUp]
    public void MakeDir() => dir = Directory.CreateTempSubdirectory("sdd-exp-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(dir, recursive: true);

    static readonly Lazy<TextCorpus> Fables = new(() => TextCorpus.FromText(GeneratedCorpus.Generate(60_000), GeneratedCorpus.Name, "char"));

    ExperimentContext Context() => new(TestDevices.Get("cpu"), dir, Fables.Value);

    static void AssertOutputs(string markdownPath, string jsonPath, IReadOnlyList<string> plots, int expectedPlots)
    {
        Assert.That(File.ReadAllText(markdownPath), Does.Contain("|---|"), "markdown table");
        Assert.That(JsonNode.Parse(File.ReadAllText(jsonPath))!["experiment"], Is.Not.Null, "JSON report");
        Assert.That(plots, Has.Count.EqualTo(expectedPlots));
        foreach (var png in plots)
            Assert.That(File.ReadAllBytes(png)[1..4], Is.EqualTo("PNG"u8.ToArray()), png);
        Assert.That(Directory.GetFiles(Path.GetDirectoryName(markdownPath)!, "*.tmp"), Is.Empty, "no temporary files left");
    }

    /// <summary>Eq. 13: at depth 16 the SDD ratio stays within 10× of 1 at every init scale; the plain stack's does not at σ = 1/√(2.5n) and 0.1× that.</summary>
    [Test]
    public void GradientDepthSddStaysNearOneWherePlainVanishes()
    {
        var o = new GradientDepthOptions { Width = 64, Rows = 8, Depths = [1, 4, 16], Trials = 2 };
        var r = GradientDepth.Run(Context(), o);
        AssertOutputs(r.MarkdownPath, r.JsonPath, r.Plots, 1);
        foreach (var row in r.Rows.Where(x => x.Depth == 16))
        {
            TestContext.Out.WriteLine($"s√n={row.ScaleTimesSqrtN:G3}: plain {row.PlainRatio:G3}, SDD {row.SddRatio:G3}");
            Assert.That(row.SddRatio, Is.InRange(0.1, 10), $"SDD ratio at s√n={row.ScaleTimesSqrtN}");
            if (row.ScaleTimesSqrtN < 0.9)
                Assert.That(row.PlainRatio, Is.LessThan(0.1), $"plain ratio at s√n={row.ScaleTimesSqrtN}");
        }
        var atDefault = r.Rows.Single(x => x.Depth == 16 && x.ScaleTimesSqrtN < 0.9 && x.ScaleTimesSqrtN > 0.5);
        Assert.That(atDefault.PlainRatio, Is.InRange(atDefault.PredictedPlain / 10, atDefault.PredictedPlain * 10), "plain ≈ (s√n)^L");
    }

    [Test]
    public void GradProfileNormsAreFiniteAndPositivePerLayer()
    {
        var o = new GradProfileOptions { NLayer = 3, DModel = 16, SeqLen = 8, Batch = 2, Steps = 4, FinalWindow = 2 };
        var r = GradProfile.Run(Context(), o);
        AssertOutputs(r.MarkdownPath, r.JsonPath, r.Plots, GradProfile.Projections.Length);
        Assert.That(r.Curves, Has.Count.EqualTo(o.Variants.Length * GradProfile.Projections.Length));
        foreach (var c in r.Curves)
            foreach (var norms in new[] { c.AtStep1, c.Final })
            {
                Assert.That(norms, Has.Length.EqualTo(o.NLayer), $"{c.Variant} {c.Projection}");
                Assert.That(norms.All(x => double.IsFinite(x) && x > 0), $"{c.Variant} {c.Projection}: {string.Join(", ", norms)}");
            }
        Assert.That(r.Curves.Select(c => c.AtStep1[0]).Distinct().Count(), Is.GreaterThan(1), "the variants differ");
    }

    [Test]
    public void RobustnessTableHasEveryCell()
    {
        var o = new RobustnessOptions { NLayer = 2, DModel = 16, SeqLen = 8, Batch = 2, Steps = 6 };
        var r = Robustness.Run(Context(), o);
        AssertOutputs(r.MarkdownPath, r.JsonPath, r.Plots, 4);
        Assert.That(r.Cells, Has.Count.EqualTo(16));
        var rows = File.ReadAllLines(r.MarkdownPath).Where(l => l.StartsWith("| ", StringComparison.Ordinal)).Skip(1).ToList();
        Assert.That(rows, Has.Count.EqualTo(16), "one table row per (variant, setting)");
        foreach (var v in ModelVariant.All)
            Assert.That(rows.Count(l => l.StartsWith($"| {v.Name}, L=2 |", StringComparison.Ordinal)), Is.EqualTo(4), v.Name);
        foreach (var (row, cell) in rows.Zip(r.Cells))
        {
            var loss = row.Split('|', StringSplitOptions.TrimEntries)[^2];
            Assert.That(cell.Outcome.Failed ? loss.StartsWith('−') : double.TryParse(loss, out var x) && double.IsFinite(x),
                $"cell '{loss}' in: {row}");
        }
        Assert.That(r.Cells.Count(c => c.Setting.HighLr), Is.EqualTo(4));
        Assert.That(Directory.GetFiles(Path.Combine(dir, "runs"), "checkpoint.safetensors", SearchOption.AllDirectories), Is.Empty, "checkpoints removed");
    }

    [Test]
    public void DepthScalingHasAFiniteLossPerDepth()
    {
        var o = new DepthScalingOptions { Depths = [1, 3], DModel = 16, SeqLen = 8, Batch = 2, Steps = 6 };
        var r = DepthScaling.Run(Context(), o);
        AssertOutputs(r.MarkdownPath, r.JsonPath, r.Plots, 1);
        foreach (var depth in o.Depths)
            foreach (var v in o.Variants)
            {
                var p = r.Points.Single(x => x.Depth == depth && x.Variant == v);
                Assert.That(double.IsFinite(p.Outcome.ReportedLoss), $"{v.Name} L={depth}: {p.Outcome.ReportedLoss}");
            }
        Assert.That(r.Points.Single(x => x.Depth == 3 && x.Variant == ModelVariant.Sdd).Parameters,
            Is.GreaterThan(r.Points.Single(x => x.Depth == 1 && x.Variant == ModelVariant.Sdd).Parameters));
    }

    [Test]
    public void CliRunsAnExperimentAndRejectsMisuse()
    {
        var (code, output, err) = CliRunner.Run("experiment", "gradient-depth", "--width", "16", "--depths", "1,2", "--trials", "1", "--out", dir, "--quiet");
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(output, Does.Contain("gradient-depth.png"));
        Assert.That(File.Exists(Path.Combine(dir, "gradient-depth.json")));
        Assert.That(CliRunner.Run("experiment", "no-such").Code, Is.EqualTo(2));
        Assert.That(CliRunner.Run("experiment", "gradient-depth", "--steps", "5").Code, Is.EqualTo(2), "--steps does not apply to gradient-depth");
        Assert.That(CliRunner.Run("experiment", "robustness", "--variants", "pre,bogus", "--out", dir).Code, Is.EqualTo(1));
    }
}
