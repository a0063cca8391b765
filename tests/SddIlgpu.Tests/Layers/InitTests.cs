// Initialisation of spec §5: bit-identical across devices for a seed, truncated normal statistics at σ,
// the Megatron / DeepNorm scalings of the plain baselines, and the SDD output scales 1/√(2L).
using NUnit.Framework;
using SddIlgpu.Layers;
using SddIlgpu.Tests.Support;

namespace SddIlgpu.Tests.Layers;

public sealed class InitTests
{
    static ModelConfig Cfg(Residual r, LinearKind l) => new(97, 64, 3, 4, 2, 176, 8, r, l);

    [Test]
    public void SameSeedGivesBitIdenticalWeightsOnBothCpuDevices()
    {
        var config = Cfg(Residual.Post, LinearKind.SddCode);
        using var a = new ModelWeights(TestDevices.Get("ilgpu-cpu"), config);
        using var b = new ModelWeights(TestDevices.Get("cpu"), config);
        using var c = new ModelWeights(TestDevices.Get("cpu"), config);
        a.Initialize(42);
        b.Initialize(42);
        c.Initialize(43);
        var wa = a.Values.ToArray();
        Check.BitIdentical(b.Values.ToArray(), wa, "seed 42 on ilgpu-cpu vs cpu");
        Assert.That(c.Values.ToArray().SequenceEqual(wa), Is.False, "another seed gives other weights");
    }

    [TestCase(Residual.Post, LinearKind.SddCode)]
    [TestCase(Residual.Pre, LinearKind.SddPaper)]
    [TestCase(Residual.Pre, LinearKind.Plain)]
    [TestCase(Residual.DeepNorm, LinearKind.Plain)]
    public void StatisticsFollowSpecFive(Residual r, LinearKind l)
    {
        var config = Cfg(r, l);
        using var w = new ModelWeights(TestDevices.Get("ilgpu-cpu"), config);
        w.Initialize(5);
        double sigma = 1 / Math.Sqrt(2.5 * 64), outScale = 1 / Math.Sqrt(2.0 * 3), beta = Math.Pow(8.0 * 3, -0.25);
        foreach (var p in w.Parameters)
        {
            var v = p.Value.ToArray();
            switch (p.Kind)
            {
                case ParamKind.Matrix or ParamKind.Embedding:
                    var leaf = p.Name.Split('.', 3).Last();
                    var expected = sigma * (l != LinearKind.Plain ? 1
                        : r == Residual.DeepNorm ? (leaf is "attn.wv.weight" or "attn.wo.weight" or "ffn.w_up.weight" or "ffn.w_gate.weight" or "ffn.w_down.weight" ? beta : 1)
                        : leaf is "attn.wo.weight" or "ffn.w_down.weight" ? outScale : 1);
                    var std = Math.Sqrt(v.Average(x => (double)x * x));
                    // a normal truncated at ±3σ has std 0.9866σ; allow sampling error of a few thousand draws
                    Assert.That(std, Is.EqualTo(0.9866 * expected).Within(0.04 * expected), $"{p.Name} std");
                    Assert.That(Math.Abs(v.Average()), Is.LessThan(0.05 * expected), $"{p.Name} mean");
                    Assert.That(v.Max(Math.Abs), Is.LessThanOrEqualTo(3 * expected * (1 + 1e-6)), $"{p.Name} cut at 3σ");
                    Assert.That(v.Max(Math.Abs), Is.GreaterThan(2.5 * expected), $"{p.Name} reaches the tails");
                    break;
                case ParamKind.AlphaOut:
                    Assert.That(v, Is.All.EqualTo((float)outScale), p.Name);
                    break;
                default:
                    Assert.That(v, Is.All.EqualTo(1f), p.Name);
                    break;
            }
        }
    }

    [Test]
    public void InitStdOverridesSigma()
    {
        using var w = new ModelWeights(TestDevices.Get("ilgpu-cpu"), Cfg(Residual.Post, LinearKind.SddCode) with { InitStd = 0.2 });
        w.Initialize(1);
        var v = w["embed.weight"].Value.ToArray();
        Assert.That(Math.Sqrt(v.Average(x => (double)x * x)), Is.EqualTo(0.9866 * 0.2).Within(0.01));
    }
}
